import TestAgent from 'supertest/lib/agent';

import { EmailOutboxService } from 'src/connection-health/email-outbox.service';
import { ScheduledCheckService } from 'src/connection-health/scheduled-check.service';
import { TokenStoreService } from 'src/connections/token-store.service';
import { MailPreferencesService } from 'src/mail/mail-preferences.service';
import { Role } from 'src/users/user.types';
import { UsersService } from 'src/users/users.service';

import { csrfFrom, signIn, TestFactory } from 'test/factories';
import { CALLBACK, registeredOrganization } from 'test/factories/epic-connection';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { CapturedMail, FakeSmtp, startFakeSmtp } from 'test/fakes/smtp';
import { freshDatabaseUrl } from 'test/setup/database';
import { createTestApp, TestApp } from 'test/setup/test-app';

/** Everything the fake knows of its patients and practitioners: none of it may be in an email. */
const PATIENT_DATA = [
  ...Object.values(SEED),
  'Camila',
  'Lopez',
  'Derrick',
  'Lin ',
  'Desiree',
  'Powell',
  '203711',
  '203713',
  '203714',
  '1987-09-12',
  '1973-06-03',
  '1993-02-21',
  'Patient/',
  'Practitioner/',
  'fhirUser',
  'launch.invalid',
];

function expectNoPatientData(mail: CapturedMail): void {
  for (const text of PATIENT_DATA) expect(mail.raw).not.toContain(text);
  for (const text of PATIENT_DATA) expect(String(mail.parsed.html)).not.toContain(text);
}

const eqDecoded = (html: string): string => html.replaceAll('&#x3D;', '=').replaceAll('&amp;', '&');

/** Users' own connections: in-app notice and email when a provider's or patient's connection ends. */
describe("users' own connections ended: notice and email", () => {
  let t: TestApp;
  let epic: FakeEpic;
  let smtp: FakeSmtp;
  let patientOrg: { orgId: string; slug: string; name: string };

  beforeAll(async () => {
    const databaseUrl = await freshDatabaseUrl();
    [epic, smtp] = await Promise.all([startFakeEpic(), startFakeSmtp()]);
    t = await createTestApp({
      databaseUrl,
      env: {
        SMTP_URL: smtp.url,
        SMTP_SECURE: 'none', // the fake offers no STARTTLS (loopback)
        MAIL_FROM: 'epic-connect <alerts@example.org>',
        MAIL_MAX_ATTEMPTS: '2',
        MAIL_HOURLY_CAP: '5',
      },
    });
    const { orgId } = await registeredOrganization(t, epic, {
      audience: 'patient',
      scopes: 'patient/Patient.read patient/Observation.read',
    });
    const [row] = await t.dataSource.query<{ slug: string; name: string }[]>(
      'SELECT slug, name FROM organization WHERE id = $1',
      [orgId],
    );
    patientOrg = { orgId, ...row };
  });
  afterAll(async () => {
    await t.close();
    await epic.close();
    await smtp.close();
  });

  const email = () => t.app.get(EmailOutboxService);

  /** The patient's browser connects their account at the fake MyChart; returns the agent. */
  async function connectPatient(patientId: string, agent: TestAgent = t.agent()): Promise<TestAgent> {
    const start = await agent.get('/fhir/epic-connect').query({ org: patientOrg.slug }).expect(303);
    const back = await epic.authorizeAsUser(new URL(start.headers.location), {
      user: { kind: 'patient', patientId },
    });
    const callback = new URL(back.location!);
    expect(callback.origin + callback.pathname).toBe(CALLBACK);
    await agent.get(callback.pathname + callback.search).expect(303);
    return agent;
  }

  const userIdOf = async (patientId: string): Promise<string> =>
    (
      await t.dataSource.query<{ id: string }[]>(`SELECT id FROM app_user WHERE fhir_user LIKE $1`, [
        `%Patient/${patientId}`,
      ])
    )[0].id;

  /** The patient's access token is over and Epic refuses the refresh (the app was removed in MyChart). */
  async function endPatientConnection(agent: TestAgent, patientId: string): Promise<void> {
    await t.dataSource.query(
      `UPDATE epic_credential c SET expires_at = now() - interval '1 minute' FROM app_user u
        WHERE u.id = c.user_id AND u.fhir_user LIKE $1`,
      [`%Patient/${patientId}`],
    );
    epic.rejectRefresh(1);
    await agent.get('/launch/patient').expect(200); // the page's read refreshes, and is refused
    await noticeRecorded(await userIdOf(patientId));
  }

  /** The notice is recorded by a listener after the commit: wait for it. */
  async function noticeRecorded(userId: string): Promise<void> {
    for (let i = 0; i < 100; i += 1) {
      const [{ n }] = await t.dataSource.query<{ n: number }[]>(
        `SELECT count(*)::int AS n FROM user_connection_notice WHERE user_id = $1`,
        [userId],
      );
      if (n > 0) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error('no notice was recorded');
  }

  const CONFIRM_SUBJECT = 'Confirm your email address for epic-connect';

  /** The emails to `address` other than confirmation requests. */
  const notices = (address: string): CapturedMail[] =>
    smtp.to(address).filter((m) => m.parsed.subject !== CONFIRM_SUBJECT);

  /** The confirmation link last emailed to `address` (delivered first). */
  async function confirmationLink(address: string): Promise<string> {
    await email().deliverDue(new Date());
    const mails = smtp.to(address).filter((m) => m.parsed.subject === CONFIRM_SUBJECT);
    expect(mails.length).toBeGreaterThan(0);
    return /(https?:\/\/\S+\/mail\/confirm\?t=\S+)/.exec(mails[mails.length - 1].parsed.text ?? '')![1];
  }

  /** Opens the confirmation link emailed to `address`, as its owner would (page, then button). */
  async function confirmAddress(address: string): Promise<void> {
    const link = await confirmationLink(address);
    const path = link.replace(/^https?:\/\/[^/]+/, '');
    expect((await t.http().get(path).expect(200)).text).toContain('<button type="submit">Confirm</button>');
    const token = new URL(link).searchParams.get('t')!;
    const done = await t.http().post('/mail/confirm').type('form').send({ t: token }).expect(200);
    expect(done.text).toContain('Your address is confirmed');
  }

  async function saveForm(
    agent: TestAgent,
    page: string,
    fields: Record<string, string>,
    status = 303,
  ): Promise<string> {
    const html = (await agent.get(page).expect(200)).text;
    const form = /<form method="post" action="([^"]+\/notifications)"/.exec(html)![1];
    const res = await agent
      .post(form)
      .type('form')
      .send({ _csrf: csrfFrom(html), ...fields })
      .expect(status);
    return res.text;
  }

  it('a patient whose connection ended sees a notice with Connect again, and gets one email to their address without patient data', async () => {
    // The address comes from the id_token's `email` claim (OpenID Connect Core §5.1) at a real launch.
    epic.setIdTokenEmail('camila.home@example.org', { verified: true });
    const agent = await connectPatient(SEED.camila).finally(() => epic.setIdTokenEmail(null));
    const userId = await userIdOf(SEED.camila);
    expect(await t.app.get(UsersService).contactEmailOf(userId)).toEqual({
      address: 'camila.home@example.org',
      source: 'id_token',
      confirmed: true,
    });
    const before = (await agent.get('/launch/patient').expect(200)).text;
    expect(before).toContain('value="camila.home@example.org"');
    expect(before).toContain('From your Epic sign-in');
    expect(before).not.toContain('own-connection-ended');

    await endPatientConnection(agent, SEED.camila);
    const page = (await agent.get('/launch/patient').expect(200)).text;
    expect(page).toContain(`Your connection with ${patientOrg.name} ended`);
    expect(eqDecoded(page)).toMatch(
      new RegExp(
        `id="own-connection-ended-${patientOrg.orgId}"[\\s\\S]*?href="/fhir/epic-connect\\?org=${patientOrg.slug}">Connect again`,
      ),
    );

    await email().deliverDue(new Date());
    const mine = smtp.to('camila.home@example.org');
    expect(mine).toHaveLength(1);
    const [mail] = mine;
    expect(mail.parsed.subject).toBe(`Your connection with ${patientOrg.name} ended`);
    expect(mail.parsed.text).toContain(`http://localhost:3000/fhir/epic-connect?org=${patientOrg.slug}`);
    expect(eqDecoded(String(mail.parsed.html))).toContain(
      `href="http://localhost:3000/fhir/epic-connect?org=${patientOrg.slug}"`,
    );
    expect(mail.header('list-unsubscribe')).toMatch(
      /^<http:\/\/localhost:3000\/mail\/unsubscribe\?t=u2\.[^>]+>$/,
    );
    expectNoPatientData(mail);

    // Once per ending: nothing more on later runs, nor when the event is heard again.
    await email().deliverDue(new Date(Date.now() + 2 * 3600_000));
    expect(smtp.to('camila.home@example.org')).toHaveLength(1);

    // Its one-click unsubscribe link turns this channel off (and only this one).
    const link = new URL(/<([^>]+)>/.exec(mail.header('list-unsubscribe')!)![1]);
    const confirm = await t
      .http()
      .get(link.pathname + link.search)
      .expect(200);
    expect(confirm.text).toContain('Stop the emails telling you that your own connection ended');
    await t
      .http()
      .post(link.pathname + link.search)
      .type('form')
      .send('List-Unsubscribe=One-Click')
      .expect(200);
    expect(await t.app.get(MailPreferencesService).modeOf(userId, 'own-connection')).toBe('off');
    expect(await t.app.get(MailPreferencesService).modeOf(userId, 'admin-connections')).toBe('immediate');
    expect((await agent.get('/launch/patient').expect(200)).text).toMatch(/value="off" selected/);

    // Connecting again takes the notice away.
    await connectPatient(SEED.camila, agent);
    const back = (await agent.get('/launch/patient').expect(200)).text;
    expect(back).not.toContain('own-connection-ended');
  });

  it('sends nothing to a patient without an address (never to the launch placeholder), nor to one who turned it off', async () => {
    const placeholderAgent = await connectPatient(SEED.derrick);
    const placeholderUser = await userIdOf(SEED.derrick);
    const offAgent = await connectPatient(SEED.desiree);
    const offUser = await userIdOf(SEED.desiree);
    await saveForm(offAgent, '/launch/patient', {
      contactEmail: 'desiree@example.org',
      ownConnection: 'off',
    });
    const sent = smtp.messages.length;

    await endPatientConnection(placeholderAgent, SEED.derrick);
    await endPatientConnection(offAgent, SEED.desiree);
    await email().deliverDue(new Date());

    expect(smtp.messages.length).toBe(sent);
    expect(smtp.messages.some((m) => m.to.some((a) => a.endsWith('@launch.invalid')))).toBe(false);
    // Both still see the notice on their page.
    expect((await placeholderAgent.get('/launch/patient').expect(200)).text).toContain(
      'own-connection-ended',
    );
    expect((await offAgent.get('/launch/patient').expect(200)).text).toContain('own-connection-ended');
    const rows = await t.dataSource.query<{ mail_pending: boolean; outbox_id: string | null }[]>(
      `SELECT mail_pending, outbox_id FROM user_connection_notice WHERE user_id = ANY($1::uuid[])`,
      [[placeholderUser, offUser]],
    );
    expect(rows).toEqual([
      { mail_pending: false, outbox_id: null },
      { mail_pending: false, outbox_id: null },
    ]);
  });

  it('takes an address entered on the page, explains a bad one without changing anything, and clears it', async () => {
    const factory = new TestFactory(t);
    const agent = await connectPatient(SEED.camila);
    const userId = await userIdOf(SEED.camila);
    await saveForm(agent, '/launch/patient', {
      contactEmail: 'camila@example.org',
      ownConnection: 'immediate',
    });
    const saved = (await agent.get('/launch/patient?saved=1').expect(200)).text;
    expect(saved).toContain('Saved.');
    expect(saved).toContain('value="camila@example.org"');
    expect(saved).not.toContain('From your Epic sign-in');

    // A later launch's claim does not replace an address they entered.
    epic.setIdTokenEmail('other@example.org', { verified: true });
    await connectPatient(SEED.camila, agent).finally(() => epic.setIdTokenEmail(null));
    expect(await t.app.get(UsersService).contactEmailOf(userId)).toEqual({
      address: 'camila@example.org',
      source: 'entered',
      confirmed: false,
    });

    for (const [input, message] of [
      ['not-an-address', 'That is not an email address'],
      ['x@launch.invalid', 'That address cannot receive email'],
    ]) {
      const text = await saveForm(
        agent,
        '/launch/patient',
        { contactEmail: input, ownConnection: 'off' },
        400,
      );
      expect(text).toContain(message);
      expect(text).toContain('aria-invalid="true"');
      expect(text).toMatch(/value="off" selected/); // what was entered is kept
    }
    // A header injection is refused before it reaches the form (every form refuses control characters).
    expect(
      await saveForm(agent, '/launch/patient', { contactEmail: 'a@example.org\r\nBcc: b@example.org' }, 400),
    ).toContain('must not contain control characters');
    await saveForm(agent, '/launch/patient', { contactEmail: 'a@example.org', ownConnection: 'weekly' }, 400);
    expect(await t.app.get(UsersService).contactEmailOf(userId)).toEqual({
      address: 'camila@example.org',
      source: 'entered',
      confirmed: false,
    });

    // Without the CSRF token: refused, nothing changed.
    await agent
      .post('/launch/patient/notifications')
      .type('form')
      .send({ contactEmail: 'evil@example.org' })
      .expect(403);
    // Another role cannot use the patient's form.
    const admin = await signIn(t, await factory.user(Role.OrgAdmin, patientOrg.orgId));
    await admin.agent
      .post('/launch/patient/notifications')
      .type('form')
      .send({ _csrf: admin.csrf, contactEmail: 'evil@example.org' })
      .expect(403);

    await saveForm(agent, '/launch/patient', { contactEmail: '  ', ownConnection: 'immediate' });
    expect(await t.app.get(UsersService).contactEmailOf(userId)).toEqual({
      address: null,
      source: 'entered',
      confirmed: false,
    });
    // Cleared stays cleared: a later launch's claim does not bring it back.
    epic.setIdTokenEmail('claim@example.org');
    await connectPatient(SEED.camila, agent).finally(() => epic.setIdTokenEmail(null));
    expect((await t.app.get(UsersService).contactEmailOf(userId)).address).toBeNull();
  });

  it('does not email an entered address until it is confirmed through the link sent to it (double opt-in)', async () => {
    const users = t.app.get(UsersService);
    const agent = await connectPatient(SEED.camila);
    const userId = await userIdOf(SEED.camila);
    await saveForm(agent, '/launch/patient', {
      contactEmail: 'camila.optin@example.org',
      ownConnection: 'immediate',
    });
    expect((await agent.get('/launch/patient').expect(200)).text).toContain('Waiting for confirmation');
    const link = await confirmationLink('camila.optin@example.org');
    const token = new URL(link).searchParams.get('t')!;
    // The link is opaque: no user id, no address.
    expect(link).not.toContain(userId);
    expect(link).not.toContain('camila.optin');

    // Until it is confirmed, an ending is not mailed there (the notice still shows on the page).
    await endPatientConnection(agent, SEED.camila);
    await email().deliverDue(new Date());
    expect(notices('camila.optin@example.org')).toHaveLength(0);

    // Altered links are refused; the GET page changes nothing.
    const altered = token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA');
    await t
      .http()
      .get(`/mail/confirm?t=${encodeURIComponent(altered)}`)
      .expect(400);
    await t.http().post('/mail/confirm').type('form').send({ t: altered }).expect(400);
    await t
      .http()
      .get(`/mail/confirm?t=${encodeURIComponent(token)}`)
      .expect(200);
    expect((await users.contactEmailOf(userId)).confirmed).toBe(false);

    // Confirmed once (no session needed); the page stops saying it waits.
    const done = await t.http().post('/mail/confirm').type('form').send({ t: token }).expect(200);
    expect(done.text).toContain('Your address is confirmed');
    const again = await t.http().post('/mail/confirm').type('form').send({ t: token }).expect(200);
    expect(again.text).toContain('already confirmed');
    expect(await users.contactEmailOf(userId)).toEqual({
      address: 'camila.optin@example.org',
      source: 'entered',
      confirmed: true,
    });
    expect((await agent.get('/launch/patient').expect(200)).text).not.toContain('Waiting for confirmation');

    // Now an ending is mailed there.
    await connectPatient(SEED.camila, agent);
    await endPatientConnection(agent, SEED.camila);
    for (let i = 0; i < 100; i += 1) {
      const [{ n }] = await t.dataSource.query<{ n: number }[]>(
        `SELECT count(*)::int AS n FROM user_connection_notice WHERE user_id = $1`,
        [userId],
      );
      if (n >= 2) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await email().deliverDue(new Date());
    expect(notices('camila.optin@example.org')).toHaveLength(1);

    // Another address needs its own confirmation; the old link no longer confirms anything.
    await saveForm(agent, '/launch/patient', {
      contactEmail: 'camila.other@example.org',
      ownConnection: 'immediate',
    });
    await t.http().post('/mail/confirm').type('form').send({ t: token }).expect(400);
    expect((await users.contactEmailOf(userId)).confirmed).toBe(false);
    await confirmAddress('camila.other@example.org');
    expect((await users.contactEmailOf(userId)).confirmed).toBe(true);
    // Clean up for the next tests: no address.
    await saveForm(agent, '/launch/patient', { contactEmail: '', ownConnection: 'immediate' });
  });

  it('ignores an id_token email marked email_verified: false, and takes an unmarked one', async () => {
    epic.setIdTokenEmail('unverified@example.org', { verified: false });
    const agent = await connectPatient(SEED.derrick).finally(() => epic.setIdTokenEmail(null));
    const userId = await userIdOf(SEED.derrick);
    const before = await t.app.get(UsersService).contactEmailOf(userId);
    expect(before.address).not.toBe('unverified@example.org');
    expect((await agent.get('/launch/patient').expect(200)).text).not.toContain('unverified@example.org');

    // Without email_verified the claim is taken (Epic documents neither claim; the id_token is verified).
    epic.setIdTokenEmail('derrick.claim@example.org');
    await connectPatient(SEED.derrick, agent).finally(() => epic.setIdTokenEmail(null));
    expect(await t.app.get(UsersService).contactEmailOf(userId)).toEqual({
      address: 'derrick.claim@example.org',
      source: 'id_token',
      confirmed: true,
    });

    // A post without the address field (only the choice) keeps the address, still from the claim;
    // only an explicit empty one clears it.
    await saveForm(agent, '/launch/patient', { ownConnection: 'off' });
    expect(await t.app.get(UsersService).contactEmailOf(userId)).toEqual({
      address: 'derrick.claim@example.org',
      source: 'id_token',
      confirmed: true,
    });
    expect(await t.app.get(MailPreferencesService).modeOf(userId, 'own-connection')).toBe('off');
    await saveForm(agent, '/launch/patient', { contactEmail: '', ownConnection: 'immediate' });
    expect(await t.app.get(UsersService).contactEmailOf(userId)).toEqual({
      address: null,
      source: 'entered',
      confirmed: false,
    });
  });

  it('a provider whose connection ended with a registration change gets the notice and an email to launch again from Epic', async () => {
    // An EHR of its own: a launch's iss names one organization.
    const ehr = await startFakeEpic();
    try {
      await providerCase(ehr);
    } finally {
      await ehr.close();
    }
  });

  async function providerCase(epic: FakeEpic): Promise<void> {
    const { orgId, admin } = await registeredOrganization(t, epic, { scopes: 'user/Patient.read' });
    const [{ name, epic_client_id: clientId }] = await t.dataSource.query<
      { name: string; epic_client_id: string }[]
    >('SELECT name, epic_client_id FROM organization WHERE id = $1', [orgId]);
    const agent = t.agent();
    // The provider's address comes from the EHR launch's id_token `email` claim.
    epic.setIdTokenEmail('dr.family@example.org', { verified: true });
    const { iss, launch } = epic.launchContext({ patient: SEED.camila, clientId });
    const start = await agent.get('/fhir/epic-launch').query({ iss, launch }).expect(303);
    const back = await epic.authorizeAsUser(new URL(start.headers.location));
    const callback = new URL(back.location!);
    const landed = await agent.get(callback.pathname + callback.search).expect(303);
    epic.setIdTokenEmail(null);
    const page = landed.headers.location;
    expect(page).toMatch(/^\/launch\/provider\/[0-9a-f-]{36}$/);
    const launched = (await agent.get(page).expect(200)).text;
    expect(launched).toContain('value="dr.family@example.org"');
    expect(launched).toContain('From your Epic sign-in');
    const [{ id: providerId }] = await t.dataSource.query<{ id: string }[]>(
      `SELECT id FROM app_user WHERE organization_id = $1 AND role = 'provider'`,
      [orgId],
    );

    // The organization registers another client: every user connection of it ends.
    const client = epic.registerClient({ redirectUris: [CALLBACK] });
    await admin.agent
      .put(`/api/organizations/${orgId}/epic-client`)
      .set('x-csrf-token', admin.csrf)
      .send({
        clientId: client.clientId,
        clientSecret: client.secret,
        environment: 'sandbox',
        fhirBaseUrl: epic.fhirBase,
      })
      .expect(200);
    await noticeRecorded(providerId);

    const after = (await agent.get(page).expect(200)).text;
    expect(after).toContain(`Your connection with ${name} ended`);
    expect(after).toContain('launch it again from Epic');

    await email().deliverDue(new Date());
    const mine = smtp.to('dr.family@example.org');
    expect(mine).toHaveLength(1);
    expect(mine[0].parsed.subject).toBe(`Your connection with ${name} ended`);
    expect(mine[0].parsed.text).toContain('launch the app again from Epic');
    expect(mine[0].parsed.text).not.toContain('/fhir/epic-connect');
    expectNoPatientData(mine[0]);
    expect(clientId).toBeTruthy();
  }

  it('lists failed deliveries to root admins only, and Retry delivers once the SMTP server recovers', async () => {
    const factory = new TestFactory(t);
    const root = await signIn(t, await factory.user(Role.RootAdmin, null));
    const orgAdmin = await signIn(t, await factory.user(Role.OrgAdmin, patientOrg.orgId));

    const agent = await connectPatient(SEED.derrick);
    await saveForm(agent, '/launch/patient', {
      contactEmail: 'derrick@example.org',
      ownConnection: 'immediate',
    });
    await confirmAddress('derrick@example.org');
    // A new ending (the page form is saved first, so this one is mailed).
    await t.dataSource.query(`DELETE FROM user_connection_notice WHERE user_id = $1`, [
      await userIdOf(SEED.derrick),
    ]);
    smtp.refuseAll(true);
    await endPatientConnection(agent, SEED.derrick);
    await email().deliverDue(new Date());
    await email().deliverDue(new Date(Date.now() + 2 * 3600_000)); // the second and last attempt
    expect(notices('derrick@example.org')).toHaveLength(0);

    const failed = await root.agent.get('/api/notifications/outbox?status=failed').expect(200);
    const entry = (failed.body as { id: string; recipient: string }[]).find(
      (e) => e.recipient === 'derrick@example.org',
    );
    expect(entry).toEqual(
      expect.objectContaining({
        channel: 'email',
        status: 'failed',
        attempts: 2,
        lastError: expect.stringContaining('451'),
        organizationId: null,
      }),
    );
    expect(JSON.stringify(failed.body)).not.toContain('unsubscribe');
    await orgAdmin.agent.get('/api/notifications/outbox?status=failed').expect(403);
    await orgAdmin.agent
      .post(`/api/notifications/outbox/${entry!.id}/retry`)
      .set('x-csrf-token', orgAdmin.csrf)
      .expect(403);
    await root.agent.get('/api/notifications/outbox?status=delivered').expect(400);

    // The page section, with a CSRF-protected Retry per row.
    const html = (await root.agent.get('/admin/notifications').expect(200)).text;
    expect(html).toContain('Failed deliveries');
    expect(html).toContain('derrick@example.org');
    expect(html).toContain(`action="/admin/notifications/outbox/${entry!.id}/retry"`);
    expect(html).not.toContain('Connect again'); // never the body
    expect((await orgAdmin.agent.get('/admin/notifications').expect(200)).text).not.toContain(
      'Failed deliveries',
    );
    await root.agent.post(`/admin/notifications/outbox/${entry!.id}/retry`).type('form').send({}).expect(403);

    smtp.refuseAll(false);
    await root.agent
      .post(`/admin/notifications/outbox/${entry!.id}/retry`)
      .type('form')
      .send({ _csrf: csrfFrom(html) })
      .expect(303);
    await email().deliverDue(new Date());
    expect(notices('derrick@example.org')).toHaveLength(1);
    const [row] = await t.dataSource.query<{ status: string; attempts: number }[]>(
      `SELECT status, attempts FROM notification_outbox WHERE id = $1`,
      [entry!.id],
    );
    expect(row).toEqual({ status: 'delivered', attempts: 1 });
    const audits = await t.dataSource.query<{ detail: { outboxId: string } }[]>(
      `SELECT detail FROM audit_event WHERE action = 'notification.delivery-retried'`,
    );
    expect(audits.map((a) => a.detail.outboxId)).toContain(entry!.id);
    // Only a failed one can be retried.
    await root.agent
      .post(`/api/notifications/outbox/${entry!.id}/retry`)
      .set('x-csrf-token', root.csrf)
      .expect(404);
  });

  it('sweeps failed deliveries after 30 days, like delivered ones', async () => {
    const [user] = await t.dataSource.query<{ id: string }[]>(`SELECT id FROM app_user LIMIT 1`);
    const insert = (daysAgo: number) =>
      t.dataSource.query<{ id: string }[]>(
        `INSERT INTO notification_outbox (id, recipient_user_id, channel, payload, status, attempts, next_attempt_at, created_at)
         VALUES (gen_random_uuid(), $1, 'email', '{"to":"x@example.org"}', 'failed', 2,
                 now() - make_interval(days => $2), now() - make_interval(days => $2))
         RETURNING id`,
        [user.id, daysAgo],
      );
    const [old] = await insert(31);
    const [recent] = await insert(29);
    await t.app.get(ScheduledCheckService).tick(new Date());
    const left = await t.dataSource.query<{ id: string }[]>(
      `SELECT id FROM notification_outbox WHERE id = ANY($1::uuid[])`,
      [[old.id, recent.id]],
    );
    expect(left.map((r) => r.id)).toEqual([recent.id]);
  });

  it('keeps to the hourly cap per recipient: the email waits until the hour has room', async () => {
    const agent = await connectPatient(SEED.camila);
    const userId = await userIdOf(SEED.camila);
    // A fresh hour for this user (earlier tests mailed them).
    await t.dataSource.query(`DELETE FROM notification_outbox WHERE recipient_user_id = $1`, [userId]);
    await saveForm(agent, '/launch/patient', {
      contactEmail: 'capped@example.org',
      ownConnection: 'immediate',
    });
    await confirmAddress('capped@example.org');
    // MAIL_HOURLY_CAP (5) messages to this user in the last hour already.
    await t.dataSource.query(
      `INSERT INTO notification_outbox (id, recipient_user_id, channel, payload, status, attempts, next_attempt_at, created_at, delivered_at)
       SELECT gen_random_uuid(), $1, 'email', '{}', 'delivered', 1, now(), now() - interval '10 minutes', now()
         FROM generate_series(1, 5)`,
      [userId],
    );
    await endPatientConnection(agent, SEED.camila);
    await email().deliverDue(new Date());
    expect(notices('capped@example.org')).toHaveLength(0);
    await email().deliverDue(new Date(Date.now() + 51 * 60_000));
    expect(notices('capped@example.org')).toHaveLength(1);
    expect(notices('capped@example.org')[0].parsed.subject).toBe(
      `Your connection with ${patientOrg.name} ended`,
    );
  });
  describe('connections that simply run out, and notices a crash lost (the scheduled check)', () => {
    let short: FakeEpic;
    let shortOrg: { orgId: string; slug: string; name: string };

    beforeAll(async () => {
      // A patient app without persistent access: no refresh token, the common case for patients.
      short = await startFakeEpic();
      const { orgId } = await registeredOrganization(t, short, {
        audience: 'patient',
        persistentAccess: false,
        scopes: 'patient/Patient.read patient/Observation.read',
      });
      const [row] = await t.dataSource.query<{ slug: string; name: string }[]>(
        'SELECT slug, name FROM organization WHERE id = $1',
        [orgId],
      );
      shortOrg = { orgId, ...row };
    });
    afterAll(() => short.close());

    /** A real standalone launch at the short-lived organization, the address from the id_token. */
    async function connectShort(
      patientId: string,
      address: string,
    ): Promise<{ agent: TestAgent; userId: string }> {
      const agent = t.agent();
      short.setIdTokenEmail(address, { verified: true });
      try {
        const start = await agent.get('/fhir/epic-connect').query({ org: shortOrg.slug }).expect(303);
        const back = await short.authorizeAsUser(new URL(start.headers.location), {
          user: { kind: 'patient', patientId },
        });
        const callback = new URL(back.location!);
        await agent.get(callback.pathname + callback.search).expect(303);
      } finally {
        short.setIdTokenEmail(null);
      }
      const [{ id: userId }] = await t.dataSource.query<{ id: string }[]>(
        `SELECT id FROM app_user WHERE organization_id = $1 AND fhir_user LIKE $2`,
        [shortOrg.orgId, `%Patient/${patientId}`],
      );
      return { agent, userId };
    }

    const credentialOf = async (userId: string) =>
      (
        await t.dataSource.query<{ ended_at: Date | null; renewable: boolean; expires_at: Date }[]>(
          `SELECT ended_at, renewable, expires_at FROM epic_credential WHERE user_id = $1`,
          [userId],
        )
      )[0];

    it('a patient connection without a refresh token that reached its end is a finished session: ended on the page, no notice, no email', async () => {
      const { agent, userId } = await connectShort(SEED.desiree, 'desiree.short@example.org');
      const live = await credentialOf(userId);
      expect(live).toEqual(expect.objectContaining({ ended_at: null, renewable: false }));
      const tokenCalls = short.calls('token');

      // Before its access token ends nothing happens; after it, the tick ends it (no refresh attempted).
      const check = t.app.get(ScheduledCheckService);
      expect(await check.tick(new Date(live.expires_at.getTime() - 60_000))).toEqual(
        expect.objectContaining({ userConnectionsEnded: 0 }),
      );
      expect((await credentialOf(userId)).ended_at).toBeNull();
      short.advanceClock(2 * 3600_000);
      const counts = await check.tick(new Date(live.expires_at.getTime() + 60_000));
      expect(counts).toEqual(expect.objectContaining({ userConnectionsEnded: 1 }));
      expect(short.calls('token')).toBe(tokenCalls);
      expect((await credentialOf(userId)).ended_at).not.toBeNull();

      // Their page shows the account ended (and how to connect again), but no "connection ended" notice.
      await new Promise((resolve) => setTimeout(resolve, 300)); // any listener has run
      const page = (await agent.get('/launch/patient').expect(200)).text;
      expect(page).toContain('id="account-ended"');
      expect(page).toContain('The session ended');
      expect(page).not.toContain(`Your connection with ${shortOrg.name} ended`);
      expect(
        await t.dataSource.query(`SELECT 1 FROM user_connection_notice WHERE user_id = $1`, [userId]),
      ).toEqual([]);

      // No email, neither now nor after later ticks (which do not record a "missing" notice either).
      await email().deliverDue(new Date());
      expect(await check.tick(new Date(live.expires_at.getTime() + 120_000))).toEqual(
        expect.objectContaining({ userConnectionsEnded: 0, userNoticesRecorded: 0 }),
      );
      await email().deliverDue(new Date(Date.now() + 2 * 3600_000));
      expect(smtp.to('desiree.short@example.org')).toHaveLength(0);
    });
  });

  describe('renewable connections that ended (the scheduled check)', () => {
    let long: FakeEpic;
    let longOrg: { orgId: string; slug: string; name: string };

    beforeAll(async () => {
      long = await startFakeEpic();
      const { orgId } = await registeredOrganization(t, long, {
        audience: 'patient',
        scopes: 'patient/Patient.read patient/Observation.read',
      });
      const [row] = await t.dataSource.query<{ slug: string; name: string }[]>(
        'SELECT slug, name FROM organization WHERE id = $1',
        [orgId],
      );
      longOrg = { orgId, ...row };
    });
    afterAll(() => long.close());

    /** A standalone launch with offline access (a refresh token), the address from the id_token. */
    async function connectLong(
      patientId: string,
      address: string,
    ): Promise<{ agent: TestAgent; userId: string; credentialId: string }> {
      const agent = t.agent();
      long.setIdTokenEmail(address, { verified: true });
      try {
        const start = await agent.get('/fhir/epic-connect').query({ org: longOrg.slug }).expect(303);
        const back = await long.authorizeAsUser(new URL(start.headers.location), {
          user: { kind: 'patient', patientId },
        });
        const callback = new URL(back.location!);
        await agent.get(callback.pathname + callback.search).expect(303);
      } finally {
        long.setIdTokenEmail(null);
      }
      const [row] = await t.dataSource.query<{ user_id: string; id: string; renewable: boolean }[]>(
        `SELECT c.user_id, c.id, c.renewable FROM epic_credential c JOIN app_user u ON u.id = c.user_id
          WHERE u.organization_id = $1 AND u.fhir_user LIKE $2`,
        [longOrg.orgId, `%Patient/${patientId}`],
      );
      expect(row.renewable).toBe(true);
      return { agent, userId: row.user_id, credentialId: row.id };
    }

    it("a renewable connection whose refresh token's announced end passed is ended by the tick: notice and one email", async () => {
      const { agent, userId } = await connectLong(SEED.desiree, 'desiree.long@example.org');
      await t.dataSource.query(
        `UPDATE epic_credential SET refresh_expires_at = now() - interval '1 minute' WHERE user_id = $1`,
        [userId],
      );
      const counts = await t.app.get(ScheduledCheckService).tick(new Date());
      expect(counts).toEqual(expect.objectContaining({ userConnectionsEnded: 1 }));
      await noticeRecorded(userId);
      const page = (await agent.get('/launch/patient').expect(200)).text;
      expect(page).toContain(`Your connection with ${longOrg.name} ended`);
      await email().deliverDue(new Date());
      const mine = smtp.to('desiree.long@example.org');
      expect(mine).toHaveLength(1);
      expect(mine[0].parsed.subject).toBe(`Your connection with ${longOrg.name} ended`);
      expectNoPatientData(mine[0]);
    });

    it('a notice lost between the ending and its listener (a crash) is recorded at the next tick, and mailed once', async () => {
      const { userId, credentialId } = await connectLong(SEED.camila, 'camila.long@example.org');
      await t.dataSource.query(
        `UPDATE epic_credential SET refresh_expires_at = now() - interval '1 minute' WHERE id = $1`,
        [credentialId],
      );
      // The crash: the ending commits (through the token store, which announces nothing) and the
      // process dies before any listener records the notice.
      const ended = await t.dataSource.transaction((manager) =>
        t.app.get(TokenStoreService).endRanOutUserCredentials(manager, [credentialId], new Date(), {
          ranOut: 'ran out',
          finished: 'finished',
        }),
      );
      expect(ended).toEqual([expect.objectContaining({ id: credentialId, finished: false })]);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(
        await t.dataSource.query(`SELECT 1 FROM user_connection_notice WHERE user_id = $1`, [userId]),
      ).toEqual([]);

      const counts = await t.app.get(ScheduledCheckService).tick(new Date());
      expect(counts).toEqual(expect.objectContaining({ userConnectionsEnded: 0, userNoticesRecorded: 1 }));
      const [{ n }] = await t.dataSource.query<{ n: number }[]>(
        `SELECT count(*)::int AS n FROM user_connection_notice WHERE user_id = $1`,
        [userId],
      );
      expect(n).toBe(1);
      await email().deliverDue(new Date());
      expect(smtp.to('camila.long@example.org')).toHaveLength(1);
      // Not again at the following tick.
      expect(await t.app.get(ScheduledCheckService).tick(new Date(Date.now() + 60_000))).toEqual(
        expect.objectContaining({ userNoticesRecorded: 0 }),
      );
    });
  });
});
