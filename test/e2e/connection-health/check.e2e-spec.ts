import { ScheduledCheckService } from 'src/connection-health/scheduled-check.service';
import { ConnectionNotifier } from 'src/connection-health/connection-notifier.service';
import { FhirClientService } from 'src/fhir-client/fhir-client.service';

import {
  authorizeAtFake,
  connectedOrganization,
  connectionRow,
  setStoredExpiry,
} from 'test/factories/epic-connection';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { freshDatabaseUrl } from 'test/setup/database';
import { createTestApp, TestApp } from 'test/setup/test-app';

const MINUTE = 60_000;

/** The scheduled check, driven by calling tick() with the clock instead of waiting for cron. */
describe('scheduled connection check', () => {
  let t: TestApp;
  let sibling: TestApp;
  let epic: FakeEpic;
  let check: ScheduledCheckService;

  beforeAll(async () => {
    const databaseUrl = await freshDatabaseUrl();
    epic = await startFakeEpic();
    // Every 15 minutes, 5-minute refresh margin, 30-minute warning (the defaults, spelled out).
    const env = {
      CONNECTION_CHECK_CRON: '*/15 * * * *',
      TOKEN_REFRESH_MARGIN_SECONDS: '300',
      EXPIRY_WARNING_MINUTES: '30',
    };
    t = await createTestApp({ databaseUrl, env });
    sibling = await createTestApp({ databaseUrl, env }); // a second instance on the same database
    check = t.app.get(ScheduledCheckService);
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
    await sibling.close();
  });
  afterEach(() => epic.clearFaults());

  const refreshes = () => epic.calls('token', { grantType: 'refresh_token' });
  const notificationsOf = (orgId: string) =>
    t.dataSource.query<{ kind: string; state: string; previous_state: string | null; title: string }[]>(
      `SELECT kind, state, previous_state, title FROM notification WHERE organization_id = $1 ORDER BY created_at, id`,
      [orgId],
    );
  /** Leaves other tests' organizations out of the way: only this test's are candidates. */
  const parkOthers = (keep: string[]) =>
    t.dataSource.query(
      `UPDATE epic_credential SET expires_at = now() + interval '10 days' WHERE NOT (organization_id = ANY($1::uuid[]))`,
      [keep],
    );

  it('refreshes a refreshable connection whose token ends before the next tick plus the margin', async () => {
    const { orgId } = await connectedOrganization(t, epic);
    await parkOthers([orgId]);
    await setStoredExpiry(t, orgId, 4 * MINUTE); // before any next tick plus the 5-minute margin
    const before = refreshes();

    const counts = await check.tick(new Date());

    expect(counts).toMatchObject({
      candidates: 1,
      refreshed: 1,
      refreshFailed: 0,
      reauthenticationRequired: 0,
    });
    expect(refreshes()).toBe(before + 1);
    expect((await connectionRow(t, orgId)).credential!.version).toBe(2);
    expect(await notificationsOf(orgId)).toEqual([]);
  });

  it('leaves alone a refreshable connection with time left', async () => {
    const { orgId } = await connectedOrganization(t, epic);
    await parkOthers([orgId]);
    // Beyond any next tick (≤ 15 min) plus the 30-minute warning window.
    await setStoredExpiry(t, orgId, 50 * MINUTE);
    const before = refreshes();
    const counts = await check.tick(new Date());
    expect(counts).toMatchObject({ candidates: 0, refreshed: 0 });
    expect(refreshes()).toBe(before);
  });

  it('warns once about a connection that will expire and cannot be refreshed, then once more when it has', async () => {
    const { orgId } = await connectedOrganization(t, epic, { persistentAccess: false });
    await settled(orgId);
    await parkOthers([orgId]);
    await setStoredExpiry(t, orgId, 20 * MINUTE); // inside the 30-minute warning
    const now = new Date();

    await check.tick(now);
    await check.tick(new Date(now.getTime() + 1000)); // a second tick: no repeat

    expect(await notificationsOf(orgId)).toEqual([
      expect.objectContaining({ kind: 'attention', state: 'expiring', previous_state: 'connected' }),
    ]);

    // The token ends: the next tick marks the connection dead and says so, once.
    await setStoredExpiry(t, orgId, -MINUTE);
    const counts = await check.tick(new Date());
    expect(counts).toMatchObject({ reauthenticationRequired: 1 });
    await check.tick(new Date());
    const row = await connectionRow(t, orgId);
    expect(row).toMatchObject({ isConnected: false, credential: null });
    expect(row.lastError).toMatch(/no refresh token/);
    expect((await notificationsOf(orgId)).map((n) => n.state)).toEqual(['expiring', 'expired']);
  });

  it('sends a resolved notice when the admin re-connects', async () => {
    const { orgId, admin } = await connectedOrganization(t, epic);
    await settled(orgId);
    await parkOthers([orgId]);
    await setStoredExpiry(t, orgId, -MINUTE);
    epic.rejectRefresh(1);
    await check.tick(new Date());
    expect((await notificationsOf(orgId)).map((n) => [n.kind, n.state])).toEqual([['attention', 'expired']]);

    await admin.agent.get(await authorizeAtFake(epic, admin, orgId)).expect(303);
    await waitFor(async () => (await notificationsOf(orgId)).length === 2);

    expect((await notificationsOf(orgId)).map((n) => [n.kind, n.state, n.previous_state])).toEqual([
      ['attention', 'expired', 'connected'],
      ['resolved', 'connected', 'expired'],
    ]);
  });

  it('announces a transient failure only once it has lasted, and its recovery', async () => {
    const { orgId } = await connectedOrganization(t, epic);
    const fhir = t.app.get(FhirClientService).forOrganization(orgId);
    epic.failNext('fhir', { status: 503, retryAfter: 0 }, 3);
    await expect(fhir.read('Patient', SEED.camila)).rejects.toThrow(/HTTP 503/);
    await new Promise((resolve) => setTimeout(resolve, 200)); // the Degraded listener has run
    expect(await notificationsOf(orgId)).toEqual([]); // a blip is not news yet (5-minute delay)

    // Still failing when looked at again six minutes later (the next tick or event): now it is.
    await t.app.get(ConnectionNotifier).evaluate([orgId], new Date(Date.now() + 6 * MINUTE));
    expect((await notificationsOf(orgId)).map((n) => [n.kind, n.state])).toEqual([['attention', 'error']]);

    await fhir.read('Patient', SEED.camila);
    await waitFor(async () => (await notificationsOf(orgId)).length === 2);
    // (Not in time order: the error notice carries the clock of the later look.)
    const kinds = (await notificationsOf(orgId)).map((n) => [n.kind, n.state]);
    expect(kinds).toHaveLength(2);
    expect(kinds).toEqual(
      expect.arrayContaining([
        ['attention', 'error'],
        ['resolved', 'connected'],
      ]),
    );
  });

  it('says nothing about a blip that recovers before the delay', async () => {
    const { orgId } = await connectedOrganization(t, epic);
    const fhir = t.app.get(FhirClientService).forOrganization(orgId);
    epic.failNext('fhir', { status: 503, retryAfter: 0 }, 3);
    await expect(fhir.read('Patient', SEED.camila)).rejects.toThrow(/HTTP 503/);
    await fhir.read('Patient', SEED.camila);
    await t.app.get(ConnectionNotifier).evaluate([orgId], new Date(Date.now() + 6 * MINUTE));
    expect(await notificationsOf(orgId)).toEqual([]);
    expect((await connectionRow(t, orgId)).lastError).toBeNull();
  });

  it('keeps the tokens and counts a transient refresh failure; the run still succeeds', async () => {
    const { orgId } = await connectedOrganization(t, epic);
    await parkOthers([orgId]);
    await setStoredExpiry(t, orgId, 4 * MINUTE);
    epic.failNext('token', { status: 503 }, { count: 1, grantType: 'refresh_token' });
    const counts = await check.tick(new Date());
    expect(counts).toMatchObject({ refreshed: 0, refreshFailed: 1 });
    expect((await connectionRow(t, orgId)).credential).toMatchObject({ version: 1 });
    expect(await check.lastRun()).toMatchObject({ outcome: 'success', counts: { refreshFailed: 1 } });
  });

  it('two instances ticking at once: the work is done once', async () => {
    const { orgId } = await connectedOrganization(t, epic);
    await parkOthers([orgId]);
    await setStoredExpiry(t, orgId, 4 * MINUTE);
    // Slow the refresh so that both ticks overlap for certain.
    epic.failNext('token', { delayMs: 400 }, { count: 1, grantType: 'refresh_token' });
    const before = refreshes();
    const runsBefore = await runCount();
    const now = new Date();

    const [a, b] = await Promise.all([check.tick(now), sibling.app.get(ScheduledCheckService).tick(now)]);

    expect([a, b].filter((c) => c !== null)).toHaveLength(1);
    expect(refreshes()).toBe(before + 1);
    expect((await runCount()) - runsBefore).toBe(1);
  });

  it('records each run for the health endpoint', async () => {
    const started = new Date();
    await check.tick(started);
    expect(await check.lastRun()).toMatchObject({
      startedAt: started,
      outcome: 'success',
      counts: expect.objectContaining({ candidates: expect.any(Number) }),
    });
  });

  it('sweeps history past its retention: old runs, delivered webhooks and notifications', async () => {
    const { orgId } = await connectedOrganization(t, epic);
    const old = new Date(Date.now() - 200 * 24 * 3600_000);
    await t.dataSource.query(
      `INSERT INTO scheduled_run (job, started_at, finished_at, outcome) VALUES ('connection-check', $1, $1, 'success')`,
      [old],
    );
    const [notification] = await t.dataSource.query<{ id: string }[]>(
      `INSERT INTO notification (organization_id, kind, state, title, message, created_at)
       VALUES ($1, 'attention', 'expired', 'old', 'old', $2) RETURNING id`,
      [orgId, old],
    );
    const [recent] = await t.dataSource.query<{ id: string }[]>(
      `INSERT INTO notification (organization_id, kind, state, title, message) VALUES ($1, 'attention', 'expired', 'new', 'new')
       RETURNING id`,
      [orgId],
    );
    await t.dataSource.query(
      `INSERT INTO notification_outbox (notification_id, channel, payload, status, delivered_at)
       VALUES ($1, 'webhook', '{}', 'delivered', $2)`,
      [recent.id, old],
    );

    const counts = await check.tick(new Date());

    expect(counts!.swept).toBeGreaterThanOrEqual(3);
    const left = await t.dataSource.query<{ id: string }[]>(
      `SELECT id FROM notification WHERE id = ANY($1::uuid[])`,
      [[notification.id, recent.id]],
    );
    expect(left.map((r) => r.id)).toEqual([recent.id]);
    const runs = await t.dataSource.query<unknown[]>(`SELECT 1 FROM scheduled_run WHERE started_at = $1`, [
      old,
    ]);
    expect(runs).toHaveLength(0);
    const outbox = await t.dataSource.query<unknown[]>(
      `SELECT 1 FROM notification_outbox WHERE notification_id = $1`,
      [recent.id],
    );
    expect(outbox).toHaveLength(0);
  });

  /** The connect event's own evaluation runs after the callback: let it record "connected" first. */
  const settled = (orgId: string) =>
    waitFor(async () => {
      const [row] = await t.dataSource.query<{ s: string | null }[]>(
        'SELECT notified_state AS s FROM organization_connection WHERE organization_id = $1',
        [orgId],
      );
      return row?.s === 'connected';
    });

  const runCount = async () =>
    (await t.dataSource.query<{ n: number }[]>(`SELECT count(*)::int AS n FROM scheduled_run`))[0].n;
});

/** Listeners run after the request that caused them; poll briefly for their effect. */
async function waitFor(condition: () => Promise<boolean>, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
