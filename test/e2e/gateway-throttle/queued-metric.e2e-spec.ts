import { createApiKey } from 'test/factories/api-keys';
import { gatewayOrganization, GatewayOrganization } from 'test/e2e/gateway/gateway-harness';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { PrometheusSample, sampleValue, scrapeMetrics } from 'test/setup/prometheus';
import { createTestApp, TestApp } from 'test/setup/test-app';

const QUEUE_MAX = 3;
const UPSTREAM_MS = 300;
/** One request in flight per organization, a short queue, a rate that never binds. */
const ENV = {
  GATEWAY_RATE_PER_SECOND: '1000',
  GATEWAY_CONCURRENCY: '1',
  GATEWAY_QUEUE_MAX: String(QUEUE_MAX),
  GATEWAY_QUEUE_WAIT_MS: '10000',
};

/**
 * `epic_connect_gateway_queued_total{organization}` through HTTP: requests over an organization's
 * concurrency limit wait in its queue and are counted there, under the organization's id; those the
 * full queue turns away (429) are counted as throttled instead, never as queued.
 */
describe('gateway throttle: the queued counter on /metrics', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let org: GatewayOrganization;
  let quiet: GatewayOrganization;
  let key: string;

  beforeAll(async () => {
    [t, epic] = await Promise.all([createTestApp({ env: ENV }), startFakeEpic()]);
    [org, quiet] = [await gatewayOrganization(t, epic), await gatewayOrganization(t, epic)];
    key = (await createApiKey(org)).secret;
  }, 60_000);
  afterAll(async () => {
    await epic.close();
    await t.close();
  });

  const queued = (samples: PrometheusSample[], organization: string) =>
    sampleValue(samples, 'epic_connect_gateway_queued_total', { organization }) ?? 0;
  const queueFull = (samples: PrometheusSample[], organization: string) =>
    sampleValue(samples, 'epic_connect_gateway_throttled_total', { organization, reason: 'queue_full' }) ?? 0;

  it('counts each request that waited for the slot, per organization id, and not the ones turned away', async () => {
    const before = (await scrapeMetrics(t)).samples;
    const requests = 2 + 2 * QUEUE_MAX; // more than the one slot and the queue can hold
    epic.failNext('fhir', { delayMs: UPSTREAM_MS }, requests); // each holds the slot a while
    const started = Date.now();
    const answers = await Promise.all(
      Array.from({ length: requests }, () =>
        t.http().get(`${org.base}/Patient/${SEED.camila}`).set('Authorization', `Bearer ${key}`),
      ),
    );
    const elapsed = Date.now() - started;
    const ok = answers.filter((res) => res.status === 200).length;
    const refused = answers.filter((res) => res.status === 429);
    expect(ok + refused.length).toBe(requests);
    for (const res of refused) expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // One in flight and QUEUE_MAX waiting: the rest are refused at once.
    expect(ok).toBeGreaterThanOrEqual(QUEUE_MAX);
    expect(ok).toBeLessThanOrEqual(QUEUE_MAX + 1);
    // They waited: one at a time upstream.
    expect(elapsed).toBeGreaterThanOrEqual(ok * UPSTREAM_MS * 0.9);

    const { samples, text } = await scrapeMetrics(t);
    expect(text).toContain('# TYPE epic_connect_gateway_queued_total counter');
    // Every request served after waiting; the first may have started at once (the slot was free).
    const waited = queued(samples, org.orgId) - queued(before, org.orgId);
    expect(waited).toBeGreaterThanOrEqual(ok - 1);
    expect(waited).toBeLessThanOrEqual(ok);
    expect(queueFull(samples, org.orgId) - queueFull(before, org.orgId)).toBe(refused.length);
    // Labelled by id (never the slug), and another organization has no series of its own.
    const series = samples.filter((s) => s.name === 'epic_connect_gateway_queued_total');
    expect(series.some((s) => s.labels.organization === org.slug)).toBe(false);
    expect(series.filter((s) => s.labels.organization === quiet.orgId)).toEqual([]);
  }, 30_000);
});
