import { KeyRotationService } from 'src/client-keys/key-rotation.service';
import { ConnectionHealthIndicators } from 'src/connection-health/health-indicators';
import { FhirClientService } from 'src/fhir-client/fhir-client.service';

import { connectedOrganization, setStoredExpiry } from 'test/factories/epic-connection';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { freshDatabaseUrl } from 'test/setup/database';
import { parsePrometheus } from 'test/setup/prometheus';
import { createTestApp, TestApp } from 'test/setup/test-app';

const METRICS_TOKEN = 'metrics-token-tEsTsEcReT-0123456789';

describe('health and metrics', () => {
  let t: TestApp;
  let scheduled: TestApp;
  let epic: FakeEpic;

  beforeAll(async () => {
    const databaseUrl = await freshDatabaseUrl();
    epic = await startFakeEpic();
    t = await createTestApp({ databaseUrl, env: { METRICS_TOKEN } });
    // An instance with the scheduler on (every 15 minutes) to judge "overdue".
    scheduled = await createTestApp({
      databaseUrl,
      env: { CRON_ENABLED: 'true', CONNECTION_CHECK_CRON: '*/15 * * * *' },
    });
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
    await scheduled.close();
  });

  const metrics = async () => {
    const res = await t.http().get('/metrics').set('authorization', `Bearer ${METRICS_TOKEN}`).expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    return parsePrometheus(res.text);
  };
  const sample = (
    all: ReturnType<typeof parsePrometheus>,
    name: string,
    labels: Record<string, string> = {},
  ) => all.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

  it('/health/ready stays 200 while Epic connections are broken', async () => {
    const { orgId } = await connectedOrganization(t, epic, { persistentAccess: false });
    await setStoredExpiry(t, orgId, -60_000); // expired, cannot be refreshed
    const ready = await t.http().get('/health/ready').expect(200);
    expect(ready.body).toMatchObject({ status: 'ok', info: { database: { status: 'up' } } });
    expect(Object.keys(ready.body.info as object)).toEqual(['database']);
  });

  it('/health shows the database, the scheduler, the outbox and connections by state', async () => {
    const res = await t.http().get('/health').expect(200);
    expect(res.body.status).toBe('ok');
    expect(res.body.details).toMatchObject({
      database: { status: 'up' },
      scheduler: { status: 'up', enabled: false },
      notificationOutbox: { status: 'up', pending: 0, failed: 0 },
      epicConnections: { status: 'up', expired: expect.any(Number), connected: expect.any(Number) },
    });
    expect(res.body.details.epicConnections.expired).toBeGreaterThanOrEqual(1);
  });

  it('/health shows the signing keys, degraded (still 200) when a rotation step is an hour late', async () => {
    const res = await t.http().get('/health').expect(200);
    const set = { active: { RS384: expect.any(String), ES384: expect.any(String) }, lateSteps: [] };
    expect(res.body.details.signingKeys).toMatchObject({ status: 'up', sandbox: set, production: set });

    // Next keys published two days ago were due to sign a day ago: the rotation job is not running.
    const rotation = scheduled.app.get(KeyRotationService);
    await rotation.startRotation(null, 'production', new Date(Date.now() - 2 * 86_400_000));
    const late = await scheduled.app.get(ConnectionHealthIndicators).signingKeys();
    expect(late.signingKeys).toMatchObject({
      status: 'degraded',
      sandbox: { lateSteps: [] },
      production: {
        lateSteps: [
          { step: 'promote', kid: expect.any(String) },
          { step: 'promote', kid: expect.any(String) },
        ],
      },
    });
    // An instance without the schedule does not judge lateness; a tick catches up.
    expect((await t.app.get(ConnectionHealthIndicators).signingKeys()).signingKeys.status).toBe('up');
    await rotation.tick();
    expect((await scheduled.app.get(ConnectionHealthIndicators).signingKeys()).signingKeys).toMatchObject({
      status: 'up',
      production: { lateSteps: [], retiring: [expect.anything(), expect.anything()] },
      sandbox: { lateSteps: [], retiring: [] },
    });
  });

  it('/health says when the scheduler is overdue (no run for two intervals): 503', async () => {
    await t.dataSource.query(
      `INSERT INTO scheduled_run (job, started_at, finished_at, outcome) VALUES ('connection-check', $1, $1, 'success')`,
      [new Date(Date.now() - 3 * 3600_000)],
    );
    const res = await scheduled.http().get('/health').expect(503);
    expect(res.body.error.scheduler).toMatchObject({
      status: 'down',
      enabled: true,
      overdue: true,
      intervalSeconds: 900,
    });
    // Readiness is unaffected.
    await scheduled.http().get('/health/ready').expect(200);
  });

  it('/metrics needs the bearer token when METRICS_TOKEN is set', async () => {
    await t.http().get('/metrics').expect(401);
    await t.http().get('/metrics').set('authorization', 'Bearer wrong').expect(401);
    const open = await scheduled.http().get('/metrics').expect(200); // no token configured there
    expect(open.text).toContain('epic_connect_connections');
  });

  it('/metrics parse as Prometheus text and show connections by state and time to expiry', async () => {
    const { orgId } = await connectedOrganization(t, epic, { persistentAccess: false });
    const all = await metrics();
    for (const state of ['not_configured', 'not_connected', 'connected', 'expiring', 'expired', 'error']) {
      expect(sample(all, 'epic_connect_connections', { state })).toEqual(expect.any(Number));
    }
    const seconds = sample(all, 'epic_connect_connection_seconds_to_end', { organization: orgId })!;
    expect(seconds).toBeGreaterThan(3000);
    expect(seconds).toBeLessThanOrEqual(3600);
    const access = sample(all, 'epic_connect_access_token_seconds_to_expiry', { organization: orgId })!;
    expect(access).toBe(seconds); // no refresh token: the access token is the end
  });

  it('refresh and FHIR call metrics move when a refresh happens', async () => {
    const { orgId } = await connectedOrganization(t, epic);
    const before = await metrics();
    await setStoredExpiry(t, orgId, -60_000);
    await t.app.get(FhirClientService).forOrganization(orgId).read('Patient', SEED.camila);
    const after = await metrics();
    const refreshed = (m: typeof before) =>
      sample(m, 'epic_connect_token_refresh_total', { outcome: 'refreshed' }) ?? 0;
    const calls = (m: typeof before) =>
      sample(m, 'epic_connect_fhir_request_duration_seconds_count', { outcome: 'success' }) ?? 0;
    expect(refreshed(after) - refreshed(before)).toBe(1);
    expect(calls(after) - calls(before)).toBe(1);
  });
});
