import { ScheduledCheckService } from 'src/connection-health/scheduled-check.service';
import { Role } from 'src/users/user.types';

import { signIn, TestFactory } from 'test/factories';
import {
  CALLBACK,
  connectedOrganization,
  connectionRow,
  registeredOrganization,
  SignedIn,
  setStoredExpiry,
} from 'test/factories/epic-connection';
import { FakeEpic, GENERIC_SMART_SERVER, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

const MINUTE = 60_000;

/**
 * Pages and messages name the organization's own server: "Epic" only for Epic, the name an
 * administrator gave it, else "the EHR"; Epic's own help only for Epic. The
 * generic server is the fake in its SMART Health IT flavour (`/smart/fhir`, nothing Epic-shaped).
 */
describe('the server name on pages and messages', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let smart: FakeEpic;
  let factory: TestFactory;
  let root: SignedIn;

  beforeAll(async () => {
    [t, epic, smart] = await Promise.all([
      createTestApp(),
      startFakeEpic(),
      startFakeEpic(GENERIC_SMART_SERVER),
    ]);
    factory = new TestFactory(t);
    root = await signIn(t, await factory.user(Role.RootAdmin, null));
  });
  afterAll(async () => {
    await Promise.all([epic.close(), smart.close()]);
    await t.close();
  });
  afterEach(() => smart.clearFaults());

  /** Saves the registration again through the API, with `changes` (the secret is kept). */
  const register = (admin: SignedIn, orgId: string, clientId: string, changes: Record<string, unknown>) =>
    admin.agent
      .put(`/api/organizations/${orgId}/epic-client`)
      .set('x-csrf-token', admin.csrf)
      .send({ clientId, environment: 'sandbox', fhirBaseUrl: smart.fhirBase, ...changes });

  const nameOf = async (orgId: string) =>
    (await t.dataSource.query<{ name: string }[]>('SELECT name FROM organization WHERE id = $1', [orgId]))[0]
      .name;

  it('calls a generic SMART server "the EHR" everywhere, without Epic’s help', async () => {
    const { orgId, admin } = await connectedOrganization(t, smart);
    expect(smart.fhirBase).toMatch(/\/smart\/fhir$/);

    const org = await admin.agent.get(`/api/organizations/${orgId}`).expect(200);
    expect(org.body).toMatchObject({ fhirServerName: null, serverName: 'the EHR', isEpic: false });

    const status = await admin.agent.get('/fhir/epic-status').query({ org: orgId }).expect(200);
    expect(status.body).toMatchObject({ state: 'connected', serverName: 'the EHR', isEpic: false });

    const registration = await admin.agent.get(`/admin/epic/registration?org=${orgId}`).expect(200);
    expect(registration.text).toContain('<h1>EHR registration</h1>');
    expect(registration.text).toContain(
      `<title>EHR registration · ${await nameOf(orgId)} · epic-connect</title>`,
    );
    expect(registration.text).toMatch(/rel="noopener">Connect to the EHR<\/a>/);
    expect(registration.text).toContain('Register these at the EHR</h2>');
    expect(registration.text).toContain('data-server-name="the EHR"');
    expect(registration.text).toContain('<h2 id="form-heading">EHR client</h2>');
    expect(registration.text).toMatch(
      /<p id="register-help">In the app's registration at the EHR \(ask its administrators\)/,
    );
    // Epic's own help and facts are not offered for a server that is not Epic.
    for (const epicOnly of [
      'fhir.epic.com, or the organization',
      'Sandbox (fhir.epic.com)',
      'Connect to Epic',
      'Register these at Epic',
      'Epic’s default',
      'recommended by Epic',
      'every Epic version',
      'Backend Systems',
    ]) {
      expect(registration.text).not.toContain(epicOnly);
    }
    expect(registration.text).toContain(`<code id="redirect-uri">${CALLBACK}</code>`); // what to register stays

    const page = await admin.agent.get(`/admin/organizations/${orgId}`).expect(200);
    expect(page.text).toContain('<dt>EHR connection</dt>');
    expect(page.text).toContain(`>Connect to the EHR</a>`);
    expect(page.text).toMatch(/id="server-name">the EHR <span class="muted">\(not recognised as Epic/);
    expect(page.text).not.toContain('Epic connection');

    const reauthenticate = await admin.agent.get(`/connect_epic/${orgId}`).expect(200);
    expect(reauthenticate.text).toContain('<h1>Re-authenticate with the EHR</h1>');
    expect(reauthenticate.text).toContain('opens the EHR’s sign-in');
    expect(reauthenticate.text).not.toContain('Epic');

    const connected = await admin.agent.get(`/admin/organizations/${orgId}?connected=1`).expect(200);
    expect(connected.text).toContain('Connected to the EHR.');
  });

  it('uses the name an administrator gives: validated, audited, and no reset of the connection', async () => {
    const { orgId, admin, clientId } = await connectedOrganization(t, smart);
    const before = (await connectionRow(t, orgId)).credential!;

    // Validation: printable, at most 100 characters.
    const long = await register(admin, orgId, clientId, { fhirServerName: 'x'.repeat(101) }).expect(400);
    expect(JSON.stringify(long.body)).toContain('fhirServerName must be at most 100 characters');
    const control = await register(admin, orgId, clientId, { fhirServerName: 'Bell\u0007' }).expect(400);
    expect(JSON.stringify(control.body)).toMatch(
      /fhirServerName must (be printable text|not contain control)/,
    );
    await register(admin, orgId, clientId, { fhirServerName: 42 }).expect(400);

    const saved = await register(admin, orgId, clientId, { fhirServerName: '  SMART Health IT ' }).expect(
      200,
    );
    expect(saved.body).toMatchObject({
      fhirServerName: 'SMART Health IT',
      serverName: 'SMART Health IT',
      isEpic: false,
      isConnected: true,
    });
    // Only a label: the connection is the same one.
    const after = await connectionRow(t, orgId);
    expect(after.credential).toMatchObject({ id: before.id, version: before.version });
    const [audit] = await t.dataSource.query<{ detail: Record<string, unknown> }[]>(
      `SELECT detail FROM audit_event WHERE organization_id = $1 AND action = 'epic-client.registered'
        ORDER BY occurred_at DESC LIMIT 1`,
      [orgId],
    );
    expect(audit.detail).toMatchObject({ fhirServerName: 'SMART Health IT', connectionReset: false });
    // Absent keeps it.
    expect((await register(admin, orgId, clientId, {}).expect(200)).body.fhirServerName).toBe(
      'SMART Health IT',
    );

    const registration = await admin.agent.get(`/admin/epic/registration?org=${orgId}`).expect(200);
    expect(registration.text).toContain('<h1>SMART Health IT registration</h1>');
    expect(registration.text).toContain('>Connect to SMART Health IT</a>');
    expect(registration.text).toMatch(/id="fhirServerName" name="fhirServerName" value="SMART Health IT"/);
    const page = await admin.agent.get(`/admin/organizations/${orgId}`).expect(200);
    expect(page.text).toContain('<dt>SMART Health IT connection</dt>');
    expect(page.text).toMatch(
      /id="server-name">SMART Health IT <span class="muted">\(as named by an administrator\)/,
    );
    const status = await admin.agent.get('/fhir/epic-status').query({ org: orgId }).expect(200);
    expect(status.body).toMatchObject({ serverName: 'SMART Health IT', isEpic: false });
    const reauthenticate = await admin.agent.get(`/connect_epic/${orgId}`).expect(200);
    expect(reauthenticate.text).toContain('opens SMART Health IT’s sign-in');

    // The root admin's console names each organization's server.
    const name = await nameOf(orgId);
    const console = await root.agent.get('/admin').query({ q: name }).expect(200);
    expect(console.text).toContain('<th scope="col">FHIR server</th>');
    expect(console.text).toMatch(new RegExp(`${orgId}">[^<]*</a>[\\s\\S]*?<td>SMART Health IT</td>`));

    // Blank clears it, through the form too; an invalid name is shown beside its field.
    const form = (fhirServerName: string) =>
      admin.agent.post(`/admin/epic/registration?org=${orgId}`).type('form').send({
        _csrf: admin.csrf,
        clientId,
        environment: 'sandbox',
        fhirBaseUrl: smart.fhirBase,
        scopes: 'user/Patient.read user/Observation.read user/Encounter.read',
        fhirServerName,
      });
    const invalid = await form('y'.repeat(101)).expect(400);
    expect(invalid.text).toMatch(/id="fhirServerName-error">fhirServerName must be at most 100 characters/);
    await form('').expect(303);
    expect((await admin.agent.get(`/api/organizations/${orgId}`).expect(200)).body).toMatchObject({
      fhirServerName: null,
      serverName: 'the EHR',
    });
  });

  it('names the server in notifications of its connection', async () => {
    const { orgId, admin, clientId } = await connectedOrganization(t, smart);
    await register(admin, orgId, clientId, { fhirServerName: 'SMART Health IT' }).expect(200);
    // Only this organization is due at the tick: the others' tokens are pushed out of its way.
    await t.dataSource.query(
      `UPDATE epic_credential SET expires_at = now() + interval '10 days' WHERE organization_id <> $1`,
      [orgId],
    );
    await setStoredExpiry(t, orgId, -MINUTE);
    smart.rejectRefresh(1);
    await t.app.get(ScheduledCheckService).tick(new Date());
    const list = await admin.agent.get('/api/notifications').expect(200);
    expect(list.body).toEqual([
      expect.objectContaining({
        organizationId: orgId,
        state: 'expired',
        title: `SMART Health IT connection expired: ${await nameOf(orgId)}`,
        message: expect.stringMatching(/^SMART Health IT connection has expired, please re-connect\./),
      }),
    ]);
    // The admin is told again at the next sign-in.
    const again = await signIn(t, await factory.user(Role.OrgAdmin, orgId));
    const landing = await again.agent.get(`/admin/organizations/${orgId}`).expect(200);
    expect(landing.text).toContain('SMART Health IT connection has expired, please re-connect.');
  });

  it('names the server on the launch and patient pages', async () => {
    const { orgId, admin, clientId } = await registeredOrganization(t, smart, {
      scopes: 'user/Patient.read user/Encounter.read',
    });
    // Several organizations of this file share the server: the launch URL names this one.
    const { slug } = (await admin.agent.get(`/api/organizations/${orgId}`).expect(200)).body as {
      slug: string;
    };
    // A provider launched from the EHR lands on the patient.
    const agent = t.agent();
    const { iss, launch } = smart.launchContext({ patient: SEED.camila, clientId });
    const start = await agent.get('/fhir/epic-launch').query({ iss, launch, org: slug }).expect(303);
    const back = await smart.authorizeAsUser(start.headers.location);
    const callback = new URL(back.location!);
    const landed = await agent.get(callback.pathname + callback.search).expect(303);
    const provider = await agent.get(landed.headers.location).expect(200);
    expect(provider.text).toContain('<h1>Launched from the EHR</h1>');
    expect(provider.text).toContain('Signed in with the EHR');
    expect(provider.text).not.toContain('Epic');

    // A patient of the organization without an account connected yet.
    const patient = await signIn(t, await factory.user(Role.Patient, orgId));
    const page = await patient.agent.get('/launch/patient').expect(200);
    expect(page.text).toContain('No EHR account is connected. Use the "Connect my EHR account" link');
    expect(page.text).toContain('Signed in with the EHR');
    expect(page.text).not.toContain('Epic');
  });

  it('keeps Epic’s wording and help for an Epic organization, named or not', async () => {
    const { orgId, admin, clientId } = await connectedOrganization(t, epic);
    const registration = await admin.agent.get(`/admin/epic/registration?org=${orgId}`).expect(200);
    expect(registration.text).toContain('<h1>Epic registration</h1>');
    expect(registration.text).toMatch(/rel="noopener">Connect to Epic<\/a>/);
    expect(registration.text).toContain(
      "In the app's registration at Epic (fhir.epic.com, or the organization's Epic team)",
    );
    expect(registration.text).toContain('Sandbox (fhir.epic.com)');
    const page = await admin.agent.get(`/admin/organizations/${orgId}`).expect(200);
    expect(page.text).toContain('<dt>Epic connection</dt>');
    expect(page.text).toMatch(/id="server-name">Epic <span class="muted">\(recognised from the base URL\)/);
    const status = await admin.agent.get('/fhir/epic-status').query({ org: orgId }).expect(200);
    expect(status.body).toMatchObject({ serverName: 'Epic', isEpic: true });

    // A name with "Epic" in it keeps Epic's help; the pages use the name.
    await admin.agent
      .put(`/api/organizations/${orgId}/epic-client`)
      .set('x-csrf-token', admin.csrf)
      .send({ clientId, environment: 'sandbox', fhirBaseUrl: epic.fhirBase, fhirServerName: 'Epic at Mercy' })
      .expect(200);
    const named = await admin.agent.get(`/admin/epic/registration?org=${orgId}`).expect(200);
    expect(named.text).toContain('<h1>Epic at Mercy registration</h1>');
    expect(named.text).toContain('>Connect to Epic at Mercy</a>');
    expect(named.text).toContain('(fhir.epic.com, or the organization');
  });
});
