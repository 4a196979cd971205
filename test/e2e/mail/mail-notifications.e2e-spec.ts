import { ConnectionNotifier } from 'src/connection-health/connection-notifier.service';
import { EmailOutboxService } from 'src/connection-health/email-outbox.service';
import { ScheduledCheckService } from 'src/connection-health/scheduled-check.service';
import { signUnsubscribeToken, unsubscribeKey } from 'src/mail/unsubscribe-token';
import { Role } from 'src/users/user.types';
import { UsersService } from 'src/users/users.service';

import { csrfFrom, TestFactory } from 'test/factories';
import { connectedOrganization, setStoredExpiry } from 'test/factories/epic-connection';
import { TEST_SECRET_MARKER, testSecret } from 'test/factories/secrets';
import { FakeEpic, startFakeEpic } from 'test/fakes/epic';
import { CapturedMail, FakeSmtp, startFakeSmtp } from 'test/fakes/smtp';
import { freshDatabaseUrl } from 'test/setup/database';
import { createTestApp, TestApp } from 'test/setup/test-app';

const MINUTE = 60_000;
const BURST_SECONDS = 120;
const DIGEST_HOUR = 7;

/** The first DIGEST_HOUR:00 UTC after `from`. */
function nextDigest(from = new Date()): Date {
  const at = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), from.getUTCDate(), DIGEST_HOUR));
  if (at <= from) at.setUTCDate(at.getUTCDate() + 1);
  return at;
}

describe('email notifications to admins (SMTP through the outbox)', () => {
  let databaseUrl: string;
  let t: TestApp;
  let second: TestApp | undefined;
  let epic: FakeEpic;
  let smtp: FakeSmtp;
  const env = (): Record<string, string> => ({
    SMTP_URL: smtp.url,
    SMTP_SECURE: 'none', // the fake offers no STARTTLS (loopback)
    MAIL_FROM: 'epic-connect <alerts@example.org>',
    MAIL_MAX_ATTEMPTS: '3',
    MAIL_HOURLY_CAP: '3',
    MAIL_BURST_WINDOW_SECONDS: String(BURST_SECONDS),
    DIGEST_HOUR_UTC: String(DIGEST_HOUR),
  });

  beforeAll(async () => {
    databaseUrl = await freshDatabaseUrl();
    [epic, smtp] = await Promise.all([startFakeEpic(), startFakeSmtp()]);
    t = await createTestApp({ databaseUrl, env: env() });
  });
  afterAll(async () => {
    await t.close();
    await second?.close();
    await epic.close();
    await smtp.close();
  });

  const email = () => t.app.get(EmailOutboxService);

  /** The organization's admin made by the factory (not a placeholder added by a test). */
  async function adminEmail(orgId: string): Promise<string> {
    const [row] = await t.dataSource.query<{ email: string }[]>(
      `SELECT email FROM app_user WHERE organization_id = $1 AND role = 'org_admin'
          AND email NOT LIKE '%@launch.invalid' ORDER BY created_at LIMIT 1`,
      [orgId],
    );
    return row.email;
  }

  /** An organization (renamed to `name`) whose connection expires (refresh rejected), seen by a tick. */
  async function expiredOrganization(name?: string): Promise<{ orgId: string; admin: string; name: string }> {
    const { orgId } = await connectedOrganization(t, epic);
    if (name) await t.dataSource.query(`UPDATE organization SET name = $2 WHERE id = $1`, [orgId, name]);
    const [{ name: actual }] = await t.dataSource.query<{ name: string }[]>(
      `SELECT name FROM organization WHERE id = $1`,
      [orgId],
    );
    await expire(orgId);
    return { orgId, admin: await adminEmail(orgId), name: actual };
  }

  /** The organization's token ends and Epic refuses the refresh; a scheduled check notices. */
  async function expire(orgId: string): Promise<void> {
    await t.dataSource.query(
      `UPDATE epic_credential SET expires_at = now() + interval '10 days' WHERE organization_id <> $1`,
      [orgId],
    );
    await setStoredExpiry(t, orgId, -MINUTE);
    epic.rejectRefresh(1);
    await t.app.get(ScheduledCheckService).tick(new Date());
  }

  async function emailRows(userEmail: string) {
    return t.dataSource.query<{ id: string; status: string; attempts: number; last_error: string | null }[]>(
      `SELECT o.id, o.status, o.attempts, o.last_error FROM notification_outbox o
         JOIN app_user u ON u.id = o.recipient_user_id
        WHERE o.channel = 'email' AND lower(u.email) = lower($1) ORDER BY o.created_at`,
      [userEmail],
    );
  }

  const unsubscribeUrl = (mail: CapturedMail): string =>
    /<([^>]+)>/.exec(mail.header('list-unsubscribe') ?? '')![1];
  const pathOf = (url: string): string => url.replace(/^https?:\/\/[^/]+/, '');

  it("emails the organization's admins at once: subject with the state, text and HTML, reconnect link, RFC 8058 headers", async () => {
    const { orgId, admin, name } = await expiredOrganization(`St Mary's ${Date.now()}`);
    await email().deliverDue(new Date());

    const mine = smtp.to(admin);
    expect(mine).toHaveLength(1);
    const [mail] = mine;
    expect(mail.parsed.subject).toBe(`Epic connection expired: ${name}`);
    expect(mail.parsed.from?.text).toContain('alerts@example.org');
    expect(mail.parsed.text).toContain(`Organization: ${name}`); // not HTML-escaped in plain text
    expect(mail.parsed.text).toContain('epic-connect');
    expect(mail.parsed.text).toContain(`http://localhost:3000/admin/epic/registration?org=${orgId}`);
    const html = String(mail.parsed.html);
    expect(html).toContain('St Mary&#x27;s'); // escaped in HTML
    expect(html.replace(/&#x3D;/g, '=')).toContain(
      `href="http://localhost:3000/admin/epic/registration?org=${orgId}"`,
    );
    expect(mail.header('list-unsubscribe')).toMatch(
      /^<http:\/\/localhost:3000\/mail\/unsubscribe\?t=u2\.[^>]+>$/,
    );
    expect(mail.header('list-unsubscribe-post')).toBe('List-Unsubscribe=One-Click');

    // The Message-ID comes from the outbox row: a duplicate delivery would carry the same one.
    const rows = await emailRows(admin);
    expect(rows).toEqual([expect.objectContaining({ status: 'delivered', attempts: 1 })]);
    expect(mail.parsed.messageId).toBe(`<${rows[0].id}@localhost>`);

    // Once per transition: running again sends nothing more.
    await email().deliverDue(new Date(Date.now() + 3 * 3600_000));
    expect(smtp.to(admin)).toHaveLength(1);
  });

  it('emails each kind of transition: expiring, error (after the delay), restored', async () => {
    const { orgId } = await connectedOrganization(t, epic);
    const admin = await adminEmail(orgId);
    const notifier = t.app.get(ConnectionNotifier);
    const subjects = () => smtp.to(admin).map((m) => m.parsed.subject);
    // The connection's own events are evaluated by listeners after the connect: let them finish, or
    // one of them could announce the change below before the explicit evaluate does.
    await new Promise((resolve) => setTimeout(resolve, 300));

    // The refresh token's end is known and near: expiring.
    await t.dataSource.query(
      `UPDATE epic_credential SET refresh_expires_at = now() + interval '10 minutes'
        WHERE organization_id = $1 AND user_id IS NULL`,
      [orgId],
    );
    expect(await notifier.evaluate([orgId])).toBe(1);
    await email().deliverDue(new Date());
    expect(subjects()).toEqual([expect.stringMatching(/^Epic connection expires in (9|10) minutes: /)]);

    // A transient failure lasting past ERROR_NOTICE_DELAY_MINUTES: error.
    await t.dataSource.query(
      `UPDATE epic_credential SET refresh_expires_at = NULL WHERE organization_id = $1 AND user_id IS NULL`,
      [orgId],
    );
    await t.dataSource.query(
      `UPDATE organization_connection SET last_error = 'Epic answered 503', last_error_at = now() - interval '10 minutes'
        WHERE organization_id = $1`,
      [orgId],
    );
    expect(await notifier.evaluate([orgId])).toBe(1);
    await email().deliverDue(new Date());
    expect(subjects()[1]).toMatch(/^Epic connection error: /);
    expect(smtp.to(admin)[1].parsed.text).toContain('Epic answered 503');

    // It recovers: restored.
    await t.dataSource.query(
      `UPDATE organization_connection SET last_error = NULL, last_error_at = NULL WHERE organization_id = $1`,
      [orgId],
    );
    expect(await notifier.evaluate([orgId])).toBe(1);
    await email().deliverDue(new Date());
    expect(subjects()[2]).toMatch(/^Epic connection restored: /);
    expect(smtp.to(admin)).toHaveLength(3);
  });

  it("never mails a launch user's placeholder address", async () => {
    const { orgId } = await connectedOrganization(t, epic);
    const admin = await adminEmail(orgId);
    const placeholder = `practitioner.x.${orgId.slice(0, 8)}@launch.invalid`;
    await t.app
      .get(UsersService)
      .create({ email: placeholder, role: Role.OrgAdmin, organizationId: orgId, password: testSecret() });
    await expire(orgId);
    await email().deliverDue(new Date());
    expect(smtp.to(admin)).toHaveLength(1);
    expect(smtp.to(placeholder)).toHaveLength(0);
  });

  it('folds the changes of one scheduled check into one message to a root admin (digest on burst)', async () => {
    const root = await new TestFactory(t).user(Role.RootAdmin, null);
    // Three organizations expire in one tick.
    const orgs = [];
    for (let i = 0; i < 3; i++) orgs.push(await connectedOrganization(t, epic));
    await t.dataSource.query(`UPDATE epic_credential SET expires_at = now() + interval '10 days'`);
    for (const { orgId } of orgs) await setStoredExpiry(t, orgId, -MINUTE);
    epic.rejectRefresh(3);
    await t.app.get(ScheduledCheckService).tick(new Date());

    await email().deliverDue(new Date());
    expect(smtp.to(root.email)).toHaveLength(0); // the window is still open
    for (const { orgId } of orgs) expect(smtp.to(await adminEmail(orgId))).toHaveLength(1);

    await email().deliverDue(new Date(Date.now() + (BURST_SECONDS + 5) * 1000));
    const mine = smtp.to(root.email);
    expect(mine).toHaveLength(1);
    expect(mine[0].parsed.subject).toBe('Connection changes: 3 expired');
    const names = await t.dataSource.query<{ name: string }[]>(
      `SELECT name FROM organization WHERE id = ANY($1::uuid[])`,
      [orgs.map((o) => o.orgId)],
    );
    for (const { name } of names) expect(mine[0].parsed.text).toContain(name);
  });

  it('honours the preference set on the account page (CSRF-protected): daily digest, then off', async () => {
    // An org admin chooses the daily digest.
    const other = await connectedOrganization(t, epic);
    const adminAddress = await adminEmail(other.orgId);
    const page = await other.admin.agent.get('/account').expect(200);
    expect(page.text).toMatch(/name="admin-connections" value="immediate" checked/);
    await other.admin.agent
      .post('/account/notifications')
      .type('form')
      .send({ 'admin-connections': 'digest' })
      .expect(403); // no CSRF token
    await other.admin.agent
      .post('/account/notifications')
      .type('form')
      .send({ _csrf: csrfFrom(page.text), 'admin-connections': 'weekly' })
      .expect(400);
    await other.admin.agent
      .post('/account/notifications')
      .type('form')
      .send({ _csrf: csrfFrom(page.text), 'admin-connections': 'digest' })
      .expect(303)
      .expect('location', '/account?saved=1');
    expect((await other.admin.agent.get('/account?saved=1').expect(200)).text).toMatch(
      /name="admin-connections" value="digest" checked/,
    );

    await t.dataSource.query(
      `UPDATE epic_credential SET expires_at = now() + interval '10 days' WHERE organization_id <> $1`,
      [other.orgId],
    );
    await setStoredExpiry(t, other.orgId, -MINUTE);
    epic.rejectRefresh(1);
    await t.app.get(ScheduledCheckService).tick(new Date());
    await email().deliverDue(new Date());
    expect(smtp.to(adminAddress)).toHaveLength(0); // not immediately

    await email().deliverDue(new Date(nextDigest().getTime() + 1000));
    const digest = smtp.to(adminAddress);
    expect(digest).toHaveLength(1);
    expect(digest[0].parsed.subject).toBe('Daily digest: 1 expired');
    expect(digest[0].parsed.text).toContain(`registration?org=${other.orgId}`);

    // Off: nothing at all for this admin's organization any more.
    const again = await other.admin.agent.get('/account').expect(200);
    await other.admin.agent
      .post('/account/notifications')
      .type('form')
      .send({ _csrf: csrfFrom(again.text), 'admin-connections': 'off' })
      .expect(303);
    expect(
      await t.dataSource.query(
        `SELECT mode FROM mail_preference p JOIN app_user u ON u.id = p.user_id WHERE lower(u.email) = lower($1)`,
        [adminAddress],
      ),
    ).toEqual([{ mode: 'off' }]);
  });

  it('unsubscribes with one click, once, without signing in; forged and altered links are refused', async () => {
    const { admin } = await expiredOrganization();
    await email().deliverDue(new Date());
    const [mail] = smtp.to(admin);
    const url = pathOf(unsubscribeUrl(mail));
    const [{ id: userId }] = await t.dataSource.query<{ id: string }[]>(
      `SELECT id FROM app_user WHERE lower(email) = lower($1)`,
      [admin],
    );
    const preference = async () =>
      (
        await t.dataSource.query<{ mode: string }[]>(
          `SELECT mode FROM mail_preference WHERE user_id = $1 AND channel = 'admin-connections'`,
          [userId],
        )
      )[0]?.mode ?? null;

    // The link is opaque: no user id or outbox id in it (the user id is nowhere in the message; the
    // outbox id is the Message-ID's left-hand side only).
    const [{ id: outboxId }] = await emailRows(admin);
    for (const id of [userId, outboxId]) expect(unsubscribeUrl(mail)).not.toContain(id);
    expect(mail.raw).not.toContain(userId);

    // Altered and forged tokens: 400, nothing changed.
    const token = new URL(unsubscribeUrl(mail)).searchParams.get('t')!;
    const altered = token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA');
    await t
      .http()
      .get(`/mail/unsubscribe?t=${encodeURIComponent(altered)}`)
      .expect(400);
    await t
      .http()
      .post(`/mail/unsubscribe?t=${encodeURIComponent(altered)}`)
      .type('form')
      .send('List-Unsubscribe=One-Click')
      .expect(400);
    const forged = signUnsubscribeToken(
      { userId, channel: 'admin-connections', tokenId: '00000000-0000-4000-8000-000000000000' },
      unsubscribeKey('a guessed secret that is not the server one'),
    );
    await t
      .http()
      .post(`/mail/unsubscribe?t=${encodeURIComponent(forged)}`)
      .type('form')
      .send('List-Unsubscribe=One-Click')
      .expect(400);
    await t.http().post('/mail/unsubscribe').type('form').send('List-Unsubscribe=One-Click').expect(400);
    expect(await preference()).toBeNull();

    // GET only asks (link scanners fetch URLs); the page has a button.
    const confirm = await t.http().get(url).expect(200);
    expect(confirm.text).toContain('<button type="submit">Unsubscribe</button>');
    expect(await preference()).toBeNull();

    // The mail client's one-click POST: no cookie, no CSRF token, no Origin of ours.
    const done = await t.http().post(url).type('form').send('List-Unsubscribe=One-Click').expect(200);
    expect(done.text).toContain('You are unsubscribed');
    expect(await preference()).toBe('off');

    // Works once.
    const used = await t.http().post(url).type('form').send('List-Unsubscribe=One-Click').expect(200);
    expect(used.text).toContain('already unsubscribed');
    expect((await t.http().get(url).expect(200)).text).toContain('already unsubscribed');

    // And nothing more is sent to them.
    const before = smtp.to(admin).length;
    const [{ organization_id: orgId }] = await t.dataSource.query<{ organization_id: string }[]>(
      `SELECT organization_id FROM app_user WHERE id = $1`,
      [userId],
    );
    // As if the connection had been restored and then ended again (a new transition).
    await t.dataSource.query(
      `UPDATE organization_connection SET notified_state = 'connected' WHERE organization_id = $1`,
      [orgId],
    );
    expect(await t.app.get(ConnectionNotifier).evaluate([orgId])).toBe(1);
    await email().deliverDue(new Date(Date.now() + 3600_000));
    expect(smtp.to(admin)).toHaveLength(before);
  });

  it('retries when the SMTP server refuses, and delivers once it recovers', async () => {
    smtp.refuseNext(1, 451);
    const { admin } = await expiredOrganization();
    await email().deliverDue(new Date());
    expect(smtp.to(admin)).toHaveLength(0);
    const [pending] = await emailRows(admin);
    expect(pending).toMatchObject({
      status: 'pending',
      attempts: 1,
      last_error: 'the SMTP server answered 451 to RCPT',
    });

    await email().deliverDue(new Date()); // not due yet (backoff)
    expect(smtp.to(admin)).toHaveLength(0);
    await email().deliverDue(new Date(Date.now() + 2 * MINUTE));
    expect(smtp.to(admin)).toHaveLength(1);
    expect(await emailRows(admin)).toEqual([expect.objectContaining({ status: 'delivered', attempts: 2 })]);
  });

  it('parks an email as failed after MAIL_MAX_ATTEMPTS, visible in /health', async () => {
    smtp.refuseAll(true);
    try {
      const { admin } = await expiredOrganization();
      let now = new Date();
      for (let i = 0; i < 4; i++) {
        await email().deliverDue(now);
        now = new Date(now.getTime() + 2 * 3600_000);
      }
      expect(await emailRows(admin)).toEqual([expect.objectContaining({ status: 'failed', attempts: 3 })]);
    } finally {
      smtp.refuseAll(false);
    }
    const health = await t.http().get('/health').expect(200);
    const outbox = (health.body as { details: Record<string, { failed: number; byChannel: object }> }).details
      .notificationOutbox;
    expect(outbox).toMatchObject({
      status: 'degraded',
      byChannel: { email: { failed: expect.any(Number) } },
    });
    expect(outbox.failed).toBeGreaterThanOrEqual(1);
  });

  it('caps emails per recipient per hour and folds the rest into the next daily digest', async () => {
    const root = await new TestFactory(t).user(Role.RootAdmin, null);
    let now = Date.now();
    for (let i = 0; i < 4; i++) {
      await expiredOrganization();
      now += (BURST_SECONDS + 5) * 1000;
      await email().deliverDue(new Date(now));
    }
    expect(smtp.to(root.email)).toHaveLength(3); // MAIL_HOURLY_CAP
    await email().deliverDue(new Date(nextDigest(new Date(now)).getTime() + 1000));
    const mine = smtp.to(root.email);
    expect(mine).toHaveLength(4);
    expect(mine[3].parsed.subject).toMatch(/^Daily digest: \d+ expired/);
  });

  it('sends each email once with two instances polling the same database', async () => {
    second = await createTestApp({ databaseUrl, env: env() });
    smtp.refuseAll(true);
    const admins: string[] = [];
    try {
      for (let i = 0; i < 3; i++) admins.push((await expiredOrganization()).admin);
      await email().deliverDue(new Date()); // each tried once and refused: pending, with backoff
    } finally {
      smtp.refuseAll(false);
    }
    const before = smtp.messages.length;
    const later = new Date(Date.now() + 3 * 3600_000);
    await Promise.all([
      email().deliverDue(later),
      second.app.get(EmailOutboxService).deliverDue(later),
      email().deliverDue(later),
      second.app.get(EmailOutboxService).deliverDue(later),
    ]);
    const sent = smtp.messages.slice(before).map((m) => m.parsed.messageId);
    expect(new Set(sent).size).toBe(sent.length);
    for (const admin of admins) {
      expect(smtp.to(admin)).toHaveLength(1);
      expect(await emailRows(admin)).toEqual([expect.objectContaining({ status: 'delivered' })]);
    }
  });

  it('renews each claim before sending: a slow SMTP server never lets two instances send one email', async () => {
    second ??= await createTestApp({ databaseUrl, env: env() });
    smtp.refuseAll(true);
    const admins: string[] = [];
    try {
      for (let i = 0; i < 2; i++) admins.push((await expiredOrganization()).admin);
      await email().deliverDue(new Date()); // refused once: pending, with backoff
    } finally {
      smtp.refuseAll(false);
    }
    const ids = [...(await emailRows(admins[0])), ...(await emailRows(admins[1]))].map((r) => r.id);
    expect(ids).toHaveLength(2);
    // Only these two are due; everything else waits.
    await t.dataSource.query(
      `UPDATE notification_outbox SET next_attempt_at = now() + interval '1 day'
        WHERE channel = 'email' AND status = 'pending' AND NOT (id = ANY($1::uuid[]))`,
      [ids],
    );
    await t.dataSource.query(
      `UPDATE notification_outbox SET next_attempt_at = now() - interval '1 second' WHERE id = ANY($1::uuid[])`,
      [ids],
    );
    const [a, b] = [email(), second.app.get(EmailOutboxService)];
    // A 2-second lease; each message takes 1.5 s: the batch's second row outlives its first lease.
    a.claimLeaseMs = 2000;
    b.claimLeaseMs = 2000;
    smtp.setDelay(1500);
    try {
      const first = a.deliverDue(new Date());
      await new Promise((resolve) => setTimeout(resolve, 2300));
      await Promise.all([first, b.deliverDue(new Date())]);
    } finally {
      smtp.setDelay(0);
      a.claimLeaseMs = 5 * 60_000;
      b.claimLeaseMs = 5 * 60_000;
    }
    for (const admin of admins) {
      expect(smtp.to(admin)).toHaveLength(1);
      expect(await emailRows(admin)).toEqual([expect.objectContaining({ status: 'delivered' })]);
    }
  });

  it('parks an email at once when the server refuses it for good (550)', async () => {
    smtp.refuseNext(1, 550);
    const { admin } = await expiredOrganization();
    await email().deliverDue(new Date());
    expect(smtp.to(admin)).toHaveLength(0);
    expect(await emailRows(admin)).toEqual([
      expect.objectContaining({
        status: 'failed',
        attempts: 1,
        last_error: 'the SMTP server answered 550 to RCPT',
      }),
    ]);
    await email().deliverDue(new Date(Date.now() + 3 * 3600_000));
    expect(smtp.to(admin)).toHaveLength(0);
  });

  it("sends a root admin's burst as one message even when its changes came over several polls", async () => {
    const root = await new TestFactory(t).user(Role.RootAdmin, null);
    const orgs = [];
    for (let i = 0; i < 3; i++) orgs.push(await expiredOrganization());
    await email().deliverDue(new Date()); // planned; the window is still open
    expect(smtp.to(root.email)).toHaveLength(0);
    // The three changes came over the window (due 20 s, 70 s and 120 s from now), as when a burst of
    // refused refreshes spreads over several polls.
    const start = Date.now();
    for (const [i, { orgId }] of orgs.entries()) {
      await t.dataSource.query(
        `UPDATE notification_recipient r SET due_at = $3 FROM notification n
          WHERE n.id = r.notification_id AND n.organization_id = $1 AND r.user_id = $2`,
        [orgId, root.id, new Date(start + (20 + 50 * i) * 1000)],
      );
    }
    await email().deliverDue(new Date(start + 21_000));
    await email().deliverDue(new Date(start + 71_000));
    await email().deliverDue(new Date(start + 3 * BURST_SECONDS * 1000));
    const mine = smtp.to(root.email);
    expect(mine).toHaveLength(1);
    expect(mine[0].parsed.subject).toBe('Connection changes: 3 expired');
    for (const { name } of orgs) expect(mine[0].parsed.text).toContain(name);
  });

  it('queues at most one follow-up run whatever the number of calls during a run', async () => {
    await new Promise((resolve) => setTimeout(resolve, 200)); // detached runs of earlier notices are over
    const service = email();
    const before = service.runsStarted;
    const results = await Promise.all(Array.from({ length: 6 }, () => service.deliverDue(new Date())));
    expect(results).toHaveLength(6);
    expect(service.runsStarted - before).toBe(2);
  });

  /** A notification of `orgId` for `userId`, written as the notifier and planner would. */
  async function plannedNotice(
    orgId: string,
    userId: string,
    mode: 'immediate' | 'digest',
    dueAt: Date,
    createdAt: Date | 'infinity' = new Date(),
  ): Promise<string> {
    const [{ id }] = await t.dataSource.query<{ id: string }[]>(
      `INSERT INTO notification (organization_id, kind, state, previous_state, title, message, created_at)
       VALUES ($1, 'attention', 'expired', 'connected', 'Epic connection expired', 'Reconnect it.', $2::timestamptz)
       RETURNING id`,
      [orgId, createdAt === 'infinity' ? 'infinity' : createdAt.toISOString()],
    );
    await t.dataSource.query(
      `INSERT INTO notification_recipient (notification_id, user_id, mode, due_at) VALUES ($1, $2, $3, $4)`,
      [id, userId, mode, dueAt],
    );
    return id;
  }

  const userIdOf = async (address: string): Promise<string> =>
    (
      await t.dataSource.query<{ id: string }[]>(`SELECT id FROM app_user WHERE lower(email) = lower($1)`, [
        address,
      ])
    )[0].id;

  it("puts changes held back by the hourly cap into the daily digest built in the same pass, not tomorrow's", async () => {
    const { orgId } = await connectedOrganization(t, epic);
    const admin = await adminEmail(orgId);
    const adminId = await userIdOf(admin);
    // MAIL_HOURLY_CAP (3) messages to them in the last hour already.
    await t.dataSource.query(
      `INSERT INTO notification_outbox (id, recipient_user_id, channel, payload, status, attempts, next_attempt_at, created_at, delivered_at)
       SELECT gen_random_uuid(), $1, 'email', '{}', 'delivered', 1, now(), now() - interval '10 minutes', now()
         FROM generate_series(1, 3)`,
      [adminId],
    );
    const now = new Date();
    await plannedNotice(orgId, adminId, 'digest', new Date(now.getTime() - 1000)); // today's digest
    await plannedNotice(orgId, adminId, 'immediate', now); // over the cap
    await email().deliverDue(now);
    const mine = smtp.to(admin);
    expect(mine).toHaveLength(1);
    expect(mine[0].parsed.subject).toBe('Daily digest: 2 expired');
    expect(
      await t.dataSource.query(
        `SELECT 1 FROM notification_recipient WHERE user_id = $1 AND composed_at IS NULL`,
        [adminId],
      ),
    ).toEqual([]);
  });

  it("still composes and sends the others' emails when one recipient's message cannot be composed", async () => {
    const good = await connectedOrganization(t, epic);
    const bad = await connectedOrganization(t, epic);
    const goodAdmin = await adminEmail(good.orgId);
    const badAdminId = await userIdOf(await adminEmail(bad.orgId));
    const now = new Date();
    // A change whose time cannot be written (Postgres' "infinity"): rendering it throws.
    const broken = await plannedNotice(
      bad.orgId,
      badAdminId,
      'immediate',
      new Date(now.getTime() - 1000),
      'infinity',
    );
    await plannedNotice(good.orgId, await userIdOf(goodAdmin), 'immediate', now);
    try {
      expect(await email().deliverDue(now)).toBeGreaterThanOrEqual(1);
      expect(smtp.to(goodAdmin)).toHaveLength(1);
      const [row] = await t.dataSource.query<{ composed_at: Date | null; due_at: Date }[]>(
        `SELECT composed_at, due_at FROM notification_recipient WHERE notification_id = $1`,
        [broken],
      );
      expect(row.composed_at).toBeNull();
      expect(new Date(row.due_at).getTime()).toBeGreaterThan(now.getTime()); // tried again later
    } finally {
      await t.dataSource.query(`DELETE FROM notification WHERE id = $1`, [broken]);
    }
  });

  it('puts no token, secret or patient detail in any message', () => {
    expect(smtp.messages.length).toBeGreaterThan(5);
    const state = (
      epic as unknown as {
        state: { accessTokens: Map<string, unknown>; refreshTokens: Map<string, unknown> };
      }
    ).state;
    const secrets = [
      ...state.accessTokens.keys(),
      ...state.refreshTokens.keys(),
      smtp.password,
      TEST_SECRET_MARKER,
    ];
    expect(secrets.length).toBeGreaterThan(4);
    for (const mail of smtp.messages) {
      for (const secret of secrets) expect(mail.raw).not.toContain(secret);
      expect(mail.raw).not.toMatch(/Patient\/|patient=|fhirUser/i);
    }
  });

  it('shows the SMTP server in /health when email is configured', async () => {
    const health = await t.http().get('/health').expect(200);
    expect((health.body as { details: Record<string, unknown> }).details.mail).toMatchObject({
      status: 'up',
    });
  });
});
