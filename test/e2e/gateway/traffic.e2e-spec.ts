import { GatewayTrafficService } from 'src/gateway/traffic/gateway-traffic.service';

import { createApiKey } from 'test/factories/api-keys';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { sampleValue as sample, scrapeMetrics } from 'test/setup/prometheus';
import { createTestApp, TestApp } from 'test/setup/test-app';

import { gatewayOrganization, GatewayOrganization, providerLaunch } from './gateway-harness';

/**
 * The gateway's health and visibility: Prometheus metrics per organization, an access record per
 * request (batched, never the query, body or resource id), the admins' JSON route and the
 * organization page's chart and table, and the retention sweep.
 */
describe('FHIR gateway: traffic metrics and access records', () => {
  let t: TestApp;
  let epicA: FakeEpic;
  let epicB: FakeEpic;
  let orgA: GatewayOrganization;
  let orgB: GatewayOrganization;
  let keyA: string;
  let keyIdA: string;
  let traffic: GatewayTrafficService;

  // Patient-identifying values the requests carry: none may reach the table.
  const FAMILY = 'Lopez-Secret';
  const BIRTHDATE = '1987-09-12';
  const SEARCH = `family=${FAMILY}&birthdate=${BIRTHDATE}`;

  beforeAll(async () => {
    [t, epicA, epicB] = await Promise.all([createTestApp(), startFakeEpic(), startFakeEpic()]);
    [orgA, orgB] = await Promise.all([gatewayOrganization(t, epicA), gatewayOrganization(t, epicB)]);
    const created = await createApiKey(orgA, { access: 'read' });
    keyA = created.secret;
    keyIdA = created.key.keyId;
    traffic = t.app.get(GatewayTrafficService);

    const gw = (path: string) => t.http().get(`${orgA.base}${path}`).set('Authorization', `Bearer ${keyA}`);
    await gw(`/Patient/${SEED.camila}`).expect(200);
    await gw(`/Patient?${SEARCH}`).expect(200);
    await gw('/metadata').expect(200);
    await gw('/Patient/no-such-patient-id').expect(404);
    // A read key may not create: refused by the gateway (403) before anything is sent.
    await t
      .http()
      .post(`${orgA.base}/Patient`)
      .set('Authorization', `Bearer ${keyA}`)
      .set('Content-Type', 'application/fhir+json')
      .send(JSON.stringify({ resourceType: 'Patient', name: [{ family: FAMILY }] }))
      .expect(403);
    await traffic.flush();
  }, 60_000);
  afterAll(async () => {
    await Promise.all([epicA.close(), epicB.close()]);
    await t.close();
  });

  const metrics = async () => (await scrapeMetrics(t)).samples;

  describe('metrics', () => {
    it('counts requests per organization id, method and status class, with their latency', async () => {
      const all = await metrics();
      const requests = (method: string, statusClass: string) =>
        sample(all, 'epic_connect_gateway_requests_total', {
          organization: orgA.orgId,
          method,
          status_class: statusClass,
        });
      expect(requests('GET', '2xx')).toBe(3);
      expect(requests('GET', '4xx')).toBe(1);
      expect(requests('POST', '4xx')).toBe(1);
      expect(
        sample(all, 'epic_connect_gateway_request_duration_seconds_count', { organization: orgA.orgId }),
      ).toBe(5);
      expect(
        sample(all, 'epic_connect_gateway_request_duration_seconds_bucket', {
          organization: orgA.orgId,
          le: '+Inf',
        }),
      ).toBe(5);
      // Another organization's traffic has its own series; the label is the id, never the slug.
      const gateway = all.filter((s) => s.name.startsWith('epic_connect_gateway_'));
      expect(gateway.filter((s) => s.labels.organization === orgB.orgId)).toEqual([]);
      expect(gateway.some((s) => s.labels.organization === orgA.slug)).toBe(false);
    });

    it("counts the server's 429 and the throttle's refusal while the organization is paused", async () => {
      const { secret } = await createApiKey(orgB);
      const gw = () =>
        t.http().get(`${orgB.base}/Patient/${SEED.camila}`).set('Authorization', `Bearer ${secret}`);
      // Longer than GATEWAY_RETRY_AFTER_CAP_SECONDS: answered 503 at once, the organization pauses 30 s.
      epicB.failNext('fhir', { status: 429, retryAfter: 30 });
      await gw().expect(503);
      await gw().expect(429);
      const all = await metrics();
      expect(sample(all, 'epic_connect_gateway_upstream_throttled_total', { organization: orgB.orgId })).toBe(
        1,
      );
      expect(
        sample(all, 'epic_connect_gateway_throttled_total', { organization: orgB.orgId, reason: 'paused' }),
      ).toBe(1);
      expect(
        sample(all, 'epic_connect_gateway_requests_total', {
          organization: orgB.orgId,
          method: 'GET',
          status_class: '5xx',
        }),
      ).toBe(1);
      expect(
        sample(all, 'epic_connect_gateway_requests_total', {
          organization: orgB.orgId,
          method: 'GET',
          status_class: '4xx',
        }),
      ).toBe(1);
    });
  });

  describe('access records', () => {
    it('records each request with its key, method, type, status, duration and size', async () => {
      const rows = await t.dataSource.query<Record<string, unknown>[]>(
        `SELECT api_key_id, user_id, method, resource_type, status, duration_ms, bytes_sent::int AS bytes_sent
           FROM gateway_access WHERE organization_id = $1 ORDER BY id`,
        [orgA.orgId],
      );
      expect(rows.map((r) => [r.method, r.resource_type, r.status])).toEqual([
        ['GET', 'Patient', 200],
        ['GET', 'Patient', 200],
        ['GET', null, 200],
        ['GET', 'Patient', 404],
        ['POST', 'Patient', 403],
      ]);
      for (const row of rows) {
        expect(row.api_key_id).toBe(keyIdA);
        expect(row.user_id).toBeNull();
        expect(row.duration_ms).toEqual(expect.any(Number));
        expect(row.bytes_sent as number).toBeGreaterThan(0);
      }
    });

    it('records the user whose own connection served the request', async () => {
      const { userId } = await providerLaunch(t, epicA, orgA);
      const { secret, key } = await createApiKey(orgA, { userConnections: true });
      await t
        .http()
        .get(`${orgA.base}/Patient/${SEED.camila}`)
        .set('Authorization', `Bearer ${secret}`)
        .set('X-Epic-Connect-User', userId)
        .expect(200);
      await traffic.flush();
      const rows = await t.dataSource.query<{ user_id: string; status: number }[]>(
        'SELECT user_id, status FROM gateway_access WHERE api_key_id = $1',
        [key.keyId],
      );
      expect(rows).toEqual([{ user_id: userId, status: 200 }]);
    });

    it('never stores the query string, the body or the resource id (a full row dump)', async () => {
      const dump = JSON.stringify(
        await t.dataSource.query('SELECT * FROM gateway_access WHERE organization_id = $1', [orgA.orgId]),
      );
      for (const secret of [
        SEED.camila,
        'no-such-patient-id',
        FAMILY,
        BIRTHDATE,
        'family',
        'birthdate',
        '?',
        'resourceType',
      ]) {
        expect(dump).not.toContain(secret);
      }
    });

    it('are buffered: nothing is written per request before the batch is flushed', async () => {
      const count = async () =>
        Number(
          (
            await t.dataSource.query<{ n: string }[]>(
              'SELECT count(*) AS n FROM gateway_access WHERE organization_id = $1',
              [orgA.orgId],
            )
          )[0].n,
        );
      const before = await count();
      await t.http().get(`${orgA.base}/metadata`).set('Authorization', `Bearer ${keyA}`).expect(200);
      expect(await count()).toBe(before); // still in memory (written within a second)
      await traffic.flush();
      expect(await count()).toBe(before + 1);
    });
  });

  describe('GET /api/organizations/:orgId/gateway/access', () => {
    it("gives the organization's admins its records, newest first, paged", async () => {
      const first = await orgA.admin.agent
        .get(`/api/organizations/${orgA.orgId}/gateway/access`)
        .query({ limit: 2 })
        .expect(200);
      expect(first.body.records).toHaveLength(2);
      expect(first.body.records[0]).toMatchObject({
        apiKeyId: keyIdA,
        method: 'GET',
        resourceType: null,
        status: 200,
      });
      expect(Object.keys(first.body.records[0]).sort()).toEqual(
        [
          'apiKeyId',
          'at',
          'bytesSent',
          'durationMs',
          'id',
          'method',
          'resourceType',
          'status',
          'userId',
        ].sort(),
      );
      expect(first.body.nextBefore).toEqual(expect.any(String));
      const all = await orgA.admin.agent
        .get(`/api/organizations/${orgA.orgId}/gateway/access`)
        .query({ limit: 500 })
        .expect(200);
      const second = await orgA.admin.agent
        .get(`/api/organizations/${orgA.orgId}/gateway/access`)
        .query({ limit: 2, before: first.body.nextBefore })
        .expect(200);
      const ids = (page: { records: { id: string }[] }) => page.records.map((r) => r.id);
      expect([...ids(first.body), ...ids(second.body)]).toEqual(ids(all.body).slice(0, 4));
      const times = (all.body.records as { at: string }[]).map((r) => r.at);
      expect([...times].sort().reverse()).toEqual(times);
      expect(all.body.nextBefore).toBeNull();
    });

    it("is a 404 for another organization's admin, and checks its parameters", async () => {
      await orgB.admin.agent.get(`/api/organizations/${orgA.orgId}/gateway/access`).expect(404);
      await orgA.admin.agent.get(`/api/organizations/${orgA.orgId}/gateway/access?limit=0`).expect(400);
      await orgA.admin.agent
        .get(`/api/organizations/${orgA.orgId}/gateway/access?before=2026-01-01`)
        .expect(400);
      await t.http().get(`/api/organizations/${orgA.orgId}/gateway/access`).expect(401);
    });
  });

  it('shows the organization page with the traffic chart (SVG) and the latest records', async () => {
    const page = await orgA.admin.agent.get(`/admin/organizations/${orgA.orgId}`).expect(200);
    const html = page.text;
    expect(html).toContain('<svg class="traffic-chart"');
    expect(html.match(/<g class="traffic-hour">/g)).toHaveLength(24);
    expect(html).toMatch(/<rect class="traffic-requests" x="[\d.]+" y="0" width="[\d.]+" height="120">/);
    expect(html).toContain('Gateway traffic over the last 24 hours: 7 requests, 2 errors.');
    const table = html.slice(
      html.indexOf('id="gateway-access"'),
      html.indexOf('</table>', html.indexOf('id="gateway-access"')),
    );
    expect(table.match(/<tr><td><time/g)).toHaveLength(7);
    expect(table).toContain(keyIdA);
    expect(table).toContain('<td class="status error">403</td>');
    expect(table).not.toContain(SEED.camila);
    // CSP: no inline style or script in the chart.
    const chart = html.slice(html.indexOf('<svg'), html.indexOf('</svg>'));
    expect(chart).not.toMatch(/style=|<script|<style/);
  });

  it('sweeps records older than GATEWAY_ACCESS_RETENTION_DAYS (30), in batches', async () => {
    const now = new Date();
    const insert = (daysAgo: number, n: number) =>
      t.dataSource.query(
        `INSERT INTO gateway_access (organization_id, api_key_id, method, status, duration_ms, bytes_sent, at)
         SELECT $1, 'old-key', 'GET', 200, 1, 1, $2::timestamptz - (g || ' seconds')::interval
           FROM generate_series(1, $3) g`,
        [orgB.orgId, new Date(now.getTime() - daysAgo * 86_400_000), n],
      );
    await insert(31, 5_003); // more than one delete batch
    await insert(29, 2);
    const removed = await traffic.sweep(now);
    expect(removed).toBeGreaterThanOrEqual(5_003);
    const [{ n }] = await t.dataSource.query<{ n: string }[]>(
      `SELECT count(*) AS n FROM gateway_access WHERE api_key_id = 'old-key'`,
    );
    expect(Number(n)).toBe(2);
  });
});
