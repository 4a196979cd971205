import { ScheduledCheckService } from 'src/connection-health/scheduled-check.service';
import { WebhookOutboxService } from 'src/connection-health/webhook-outbox.service';
import { Role } from 'src/users/user.types';

import { signIn, TestFactory } from 'test/factories';
import { connectedOrganization, setStoredExpiry } from 'test/factories/epic-connection';
import { FakeEpic, startFakeEpic } from 'test/fakes/epic';
import { startWebhookReceiver, WebhookReceiver } from 'test/fakes/webhook-receiver';
import { freshDatabaseUrl } from 'test/setup/database';
import { createTestApp, TestApp } from 'test/setup/test-app';

const MINUTE = 60_000;

describe('notifications: in-app list, webhook outbox, sign-in notices', () => {
  let databaseUrl: string;
  let t: TestApp;
  let epic: FakeEpic;
  let hook: WebhookReceiver;
  let restarted: TestApp | undefined;
  const env = (): Record<string, string> => ({
    NOTIFY_WEBHOOK_URL: hook.url,
    NOTIFY_WEBHOOK_MAX_ATTEMPTS: '5',
  });

  beforeAll(async () => {
    databaseUrl = await freshDatabaseUrl();
    [epic, hook] = await Promise.all([startFakeEpic(), startWebhookReceiver()]);
    t = await createTestApp({ databaseUrl, env: env() });
  });
  afterAll(async () => {
    await epic.close();
    await hook.close();
    await t.close();
    await restarted?.close();
  });

  /** An organization whose connection has expired (refresh rejected), noticed by a tick. */
  async function expiredOrganization(
    app = t,
  ): Promise<{ orgId: string; admin: Awaited<ReturnType<typeof signIn>> }> {
    const { orgId, admin } = await connectedOrganization(app, epic);
    await app.dataSource.query(
      `UPDATE epic_credential SET expires_at = now() + interval '10 days' WHERE organization_id <> $1`,
      [orgId],
    );
    await setStoredExpiry(app, orgId, -MINUTE);
    epic.rejectRefresh(1);
    await app.app.get(ScheduledCheckService).tick(new Date());
    return { orgId, admin };
  }

  it('lists notifications for the organization admin, counts unread, and marks them read', async () => {
    const { orgId, admin } = await expiredOrganization();
    const list = await admin.agent.get('/api/notifications').expect(200);
    expect(list.body).toEqual([
      expect.objectContaining({
        organizationId: orgId,
        kind: 'attention',
        state: 'expired',
        message: expect.stringMatching(
          /^Epic connection has expired, please re-connect\. Reason: .*invalid_grant/,
        ),
        link: `http://localhost:3000/connect_epic/${orgId}`,
        read: false,
      }),
    ]);
    expect((await admin.agent.get('/api/notifications/unread-count').expect(200)).body).toEqual({
      unread: 1,
    });

    const id = (list.body as { id: string }[])[0].id;
    await admin.agent.post(`/api/notifications/${id}/read`).expect(403); // CSRF
    await admin.agent.post(`/api/notifications/${id}/read`).set('x-csrf-token', admin.csrf).expect(204);
    expect((await admin.agent.get('/api/notifications/unread-count').expect(200)).body).toEqual({
      unread: 0,
    });
    expect((await admin.agent.get('/api/notifications?unread=true').expect(200)).body).toEqual([]);

    // The header shows the count on every admin page; the notifications page lists them.
    const page = await admin.agent.get('/admin/notifications').expect(200);
    expect(page.text).toContain('Epic connection expired');
  });

  it("keeps organizations apart: another org's admin neither sees nor marks them", async () => {
    const { orgId } = await expiredOrganization();
    const other = await new TestFactory(t).organization();
    const outsider = await signIn(t, await new TestFactory(t).user(Role.OrgAdmin, other.id));
    const theirs = (await outsider.agent.get('/api/notifications').expect(200)).body as {
      organizationId: string;
    }[];
    expect(theirs.some((n) => n.organizationId === orgId)).toBe(false);

    const [notification] = await t.dataSource.query<{ id: string }[]>(
      `SELECT id FROM notification WHERE organization_id = $1`,
      [orgId],
    );
    await outsider.agent
      .post(`/api/notifications/${notification.id}/read`)
      .set('x-csrf-token', outsider.csrf)
      .expect(404);
    await outsider.agent
      .post('/api/notifications/not-a-uuid/read')
      .set('x-csrf-token', outsider.csrf)
      .expect(400);

    const root = await signIn(t, await new TestFactory(t).user(Role.RootAdmin, null));
    const all = (await root.agent.get('/api/notifications?limit=200').expect(200)).body as {
      organizationId: string;
    }[];
    expect(all.some((n) => n.organizationId === orgId)).toBe(true);
  });

  it('delivers to the webhook once, with a Slack-compatible text and an idempotency key', async () => {
    const before = hook.requests.length;
    const { orgId } = await expiredOrganization();
    await t.app.get(WebhookOutboxService).deliverDue(new Date());
    const mine = hook.requests
      .slice(before)
      .filter((r) => (r.body.organization as { id: string }).id === orgId);
    expect(mine).toHaveLength(1);
    expect(mine[0].body).toMatchObject({
      event: 'connection.attention',
      state: 'expired',
      text: expect.stringContaining('Epic connection has expired, please re-connect'),
      links: { reconnect: `http://localhost:3000/connect_epic/${orgId}` },
    });
    expect(mine[0].headers['idempotency-key']).toMatch(/^[0-9a-f-]{36}$/);
    expect(JSON.stringify(mine[0].body)).not.toMatch(/tEsTsEcReT/);
  });

  it('a failing webhook loses nothing: retried with backoff until it answers, then delivered exactly once', async () => {
    hook.failNext(2, 503);
    const before = hook.requests.length;
    const { orgId } = await expiredOrganization();
    const outbox = t.app.get(WebhookOutboxService);
    const mine = () =>
      hook.requests.slice(before).filter((r) => (r.body.organization as { id: string }).id === orgId);

    let now = new Date();
    await outbox.deliverDue(now); // the tick already tried once (503); this is not due yet
    expect(mine().map((r) => r.status)).toEqual([503]);
    for (let i = 0; i < 4; i++) {
      now = new Date(now.getTime() + 2 * 3600_000); // past any backoff
      await outbox.deliverDue(now);
    }
    expect(mine().map((r) => r.status)).toEqual([503, 503, 204]);
    expect((await outbox.backlog(now)).pending).toBe(0);
  });

  it('delivers what was pending after a restart', async () => {
    hook.failNext(1, 500);
    const before = hook.requests.length;
    const { orgId } = await expiredOrganization();
    await t.app.get(WebhookOutboxService).deliverDue(new Date()); // not due yet: nothing sent
    const mine = () =>
      hook.requests.slice(before).filter((r) => (r.body.organization as { id: string }).id === orgId);
    expect(mine().map((r) => r.status)).toEqual([500]);

    // Another process starts on the same database (as after a crash) and finds the entry pending.
    // (Closed in afterAll: passport is process-wide, and closing it now would break sign-in for `t`.)
    restarted = await createTestApp({ databaseUrl, env: env() });
    await restarted.app.get(WebhookOutboxService).deliverDue(new Date(Date.now() + 2 * 3600_000));
    await restarted.app.get(WebhookOutboxService).deliverDue(new Date(Date.now() + 4 * 3600_000));
    expect(mine().map((r) => r.status)).toEqual([500, 204]);
  });

  it('parks a delivery as failed after the last attempt, and says so in the backlog', async () => {
    hook.failNext(5, 500);
    await expiredOrganization();
    const outbox = t.app.get(WebhookOutboxService);
    let now = new Date();
    for (let i = 0; i < 6; i++) {
      now = new Date(now.getTime() + 2 * 3600_000);
      await outbox.deliverDue(now);
    }
    expect((await outbox.backlog(now)).failed).toBeGreaterThanOrEqual(1);
  });

  it('tells an org admin at sign-in that the connection has expired, with the re-connect link', async () => {
    const { orgId } = await expiredOrganization();
    const user = await new TestFactory(t).user(Role.OrgAdmin, orgId);
    const agent = t.agent();
    const loginPage = await agent.get('/login').expect(200);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(loginPage.text)![1];
    const res = await agent
      .post('/login')
      .type('form')
      .send({ _csrf: csrf, email: user.email, password: user.password })
      .expect(303);
    expect(res.headers.location).toBe(`/admin/organizations/${orgId}`);
    const landing = await agent.get(res.headers.location).expect(200);
    const flashes = (html: string) => /<div class="flashes"[\s\S]*?<\/div>/.exec(html)?.[0] ?? '';
    expect(flashes(landing.text)).toContain('Epic connection has expired, please re-connect.');
    expect(flashes(landing.text)).toContain(`href="/connect_epic/${orgId}"`);
    expect(landing.text).toMatch(/Notifications <span class="badge"[^>]*>1<\/span>/);
    // Once only.
    const again = await agent.get(res.headers.location).expect(200);
    expect(flashes(again.text)).toBe('');
  });

  it('gives a root admin a summary at sign-in', async () => {
    await expiredOrganization();
    const user = await new TestFactory(t).user(Role.RootAdmin, null);
    const agent = t.agent();
    const loginPage = await agent.get('/login').expect(200);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(loginPage.text)![1];
    await agent
      .post('/login')
      .type('form')
      .send({ _csrf: csrf, email: user.email, password: user.password })
      .expect(303);
    const landing = await agent.get('/admin').expect(200);
    expect(landing.text).toMatch(/\d+ organizations? needs? attention: \d+ expired/);
  });
});
