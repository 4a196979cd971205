import TestAgent from 'supertest/lib/agent';

import { Role } from 'src/users/user.types';

import { signIn, TestFactory } from 'test/factories';
import { CALLBACK, registeredOrganization } from 'test/factories/epic-connection';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

/** "Connect my Epic account": the standalone patient launch (docs/epic-and-smart.md §8). */
describe('patient standalone launch', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let orgId: string;
  let slug: string;

  beforeAll(async () => {
    [t, epic] = await Promise.all([createTestApp(), startFakeEpic()]);
    ({ orgId } = await registeredOrganization(t, epic, {
      audience: 'patient',
      scopes: 'patient/Patient.read patient/Observation.read',
    }));
    [{ slug }] = await t.dataSource.query<{ slug: string }[]>('SELECT slug FROM organization WHERE id = $1', [
      orgId,
    ]);
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });

  /** The patient's browser: connect, sign in at MyChart as `patientId`, come back. Returns the landing path. */
  async function connect(agent: TestAgent, patientId: string = SEED.camila): Promise<string> {
    const start = await agent.get('/fhir/epic-connect').query({ org: slug }).expect(303);
    const authorize = new URL(start.headers.location);
    expect(authorize.searchParams.get('scope')).toBe(
      'launch/patient openid fhirUser offline_access patient/Patient.read patient/Observation.read',
    );
    expect(authorize.searchParams.get('launch')).toBeNull();
    expect(authorize.searchParams.get('aud')).toBe(epic.fhirBase);
    const back = await epic.authorizeAsUser(authorize, { user: { kind: 'patient', patientId } });
    const callback = new URL(back.location!);
    expect(callback.origin + callback.pathname).toBe(CALLBACK);
    const res = await agent.get(callback.pathname + callback.search).expect(303);
    return res.headers.location;
  }

  const patientUsers = async () =>
    (
      await t.dataSource.query<{ n: number }[]>(
        `SELECT count(*)::int AS n FROM app_user WHERE organization_id = $1 AND role = 'patient'`,
        [orgId],
      )
    )[0].n;

  it('signs a new patient in, creates the user once, and shows their own summary', async () => {
    const agent = t.agent();
    expect(await connect(agent)).toBe('/launch/patient');
    const page = await agent.get('/launch/patient').expect(200);
    expect(page.text).toMatch(/id="patient-name">Camila [^<]*Lopez/);
    expect(page.text).toContain('✅ Connected');
    expect(page.text).toContain('Recent observations');
    const token = epic.requests('token').at(-1)!.responseBody as Record<string, string>;
    expect(page.text).not.toContain(token.access_token);
    expect(page.text).not.toContain(token.refresh_token);

    const before = await patientUsers();
    await connect(t.agent()); // the same patient from another browser
    expect(await patientUsers()).toBe(before);
  });

  it('links the account of a signed-in patient', async () => {
    const patient = await new TestFactory(t).user(Role.Patient, orgId);
    const { agent } = await signIn(t, patient);
    expect(await connect(agent, SEED.derrick)).toBe('/launch/patient');
    const [row] = await t.dataSource.query<{ fhir_user: string }[]>(
      'SELECT fhir_user FROM app_user WHERE id = $1',
      [patient.id],
    );
    expect(row.fhir_user).toMatch(new RegExp(`Patient/${SEED.derrick}$`));
    expect((await agent.get('/launch/patient').expect(200)).text).toMatch(/id="patient-name">Derrick/);
  });

  it("never shows or lets anyone disconnect another patient's account", async () => {
    const camila = t.agent();
    await connect(camila, SEED.camila);
    const desiree = t.agent();
    await connect(desiree, SEED.desiree);
    const page = await desiree.get('/launch/patient').expect(200);
    expect(page.text).not.toContain('Camila');
    const [theirs] = await t.dataSource.query<{ id: string }[]>(
      `SELECT c.id FROM epic_credential c JOIN app_user u ON u.id = c.user_id
        WHERE u.fhir_user LIKE $1 AND c.organization_id = $2 LIMIT 1`,
      [`%Patient/${SEED.camila}`, orgId],
    );
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page.text)![1];
    await desiree
      .post(`/launch/patient/credentials/${theirs.id}/disconnect`)
      .type('form')
      .send({ _csrf: csrf })
      .expect(404);
    await desiree.get('/launch/provider/' + theirs.id).expect(403); // a patient is not a provider
  });

  it('disconnects the account', async () => {
    const agent = t.agent();
    await connect(agent, SEED.desiree);
    const page = await agent.get('/launch/patient').expect(200);
    const action = /action="(\/launch\/patient\/credentials\/[^"]+\/disconnect)"/.exec(page.text)![1];
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page.text)![1];
    await agent.post(action).type('form').send({ _csrf: csrf }).expect(303);
    expect((await agent.get('/launch/patient').expect(200)).text).toContain('No Epic account is connected');
  });

  it("refreshes a patient's expired token like an organization's, once, without touching the organization", async () => {
    const agent = t.agent();
    await connect(agent, SEED.camila);
    await t.dataSource.query(
      `UPDATE epic_credential SET expires_at = now() - interval '1 minute'
        WHERE organization_id = $1 AND purpose = 'patient'`,
      [orgId],
    );
    epic.expireAccessTokens();
    const before = epic.calls('token', { grantType: 'refresh_token' });
    const page = await agent.get('/launch/patient').expect(200);
    expect(page.text).toMatch(/id="patient-name">Camila/);
    expect(epic.calls('token', { grantType: 'refresh_token' }) - before).toBeGreaterThanOrEqual(1);
    const org = await t.dataSource.query<{ is_connected: boolean; last_error: string | null }[]>(
      `SELECT COALESCE(s.is_connected, false) AS is_connected, s.last_error
         FROM organization o LEFT JOIN organization_connection s ON s.organization_id = o.id WHERE o.id = $1`,
      [orgId],
    );
    expect(org[0]).toEqual({ is_connected: false, last_error: null });
  });

  it("records a patient's failing connection on their own credential, and clears it when calls work again", async () => {
    const agent = t.agent();
    await connect(agent, SEED.derrick);
    epic.failNext('fhir', { status: 503, retryAfter: 0 }, 3);
    const failing = await agent.get('/launch/patient').expect(200);
    expect(failing.text).toMatch(/HTTP 503/);
    const lastError = async () =>
      (
        await t.dataSource.query<{ last_error: string | null }[]>(
          `SELECT c.last_error FROM epic_credential c JOIN app_user u ON u.id = c.user_id
            WHERE u.fhir_user LIKE $1 AND c.organization_id = $2`,
          [`%Patient/${SEED.derrick}`, orgId],
        )
      ).map((r) => r.last_error);
    expect((await lastError())[0]).toMatch(/HTTP 503/);
    const shown = await agent.get('/launch/patient').expect(200); // works again
    expect(shown.text).toContain('⚠ Error');
    expect(await lastError()).toEqual([null]);
    expect((await agent.get('/launch/patient').expect(200)).text).toContain('✅ Connected');
    const org = await t.dataSource.query<{ last_error: string | null }[]>(
      `SELECT s.last_error FROM organization o
         LEFT JOIN organization_connection s ON s.organization_id = o.id WHERE o.id = $1`,
      [orgId],
    );
    expect(org[0].last_error).toBeNull();
  });

  it('says why a connection Epic ended, keeps nothing of its tokens, and replaces it on reconnect', async () => {
    const agent = t.agent();
    await connect(agent, SEED.desiree);
    const rows = () =>
      t.dataSource.query<
        { ended_at: Date | null; access_token_enc: string | null; refresh_token_enc: string | null }[]
      >(
        `SELECT c.ended_at, c.access_token_enc, c.refresh_token_enc
           FROM epic_credential c JOIN app_user u ON u.id = c.user_id
          WHERE u.fhir_user LIKE $1 AND c.organization_id = $2`,
        [`%Patient/${SEED.desiree}`, orgId],
      );
    await t.dataSource.query(
      `UPDATE epic_credential c SET expires_at = now() - interval '1 minute' FROM app_user u
        WHERE u.id = c.user_id AND u.fhir_user LIKE $1`,
      [`%Patient/${SEED.desiree}`],
    );
    epic.rejectRefresh(); // the patient removed the app in MyChart, say

    const ended = await agent.get('/launch/patient').expect(200);
    expect(ended.text).toContain('❌ Expired');
    expect(ended.text).toMatch(/id="account-ended">This connection ended [^<]*invalid_grant/);
    // Handlebars writes "=" in attributes as &#x3D;, which the browser reads back as "=".
    expect(ended.text.replaceAll('&#x3D;', '=')).toContain(`href="/fhir/epic-connect?org=${slug}"`);
    expect(await rows()).toEqual([
      { ended_at: expect.any(Date), access_token_enc: null, refresh_token_enc: null },
    ]);
    // Shown again on the next visit, without calling Epic.
    const refreshes = epic.calls('token', { grantType: 'refresh_token' });
    expect((await agent.get('/launch/patient').expect(200)).text).toContain('This connection ended');
    expect(epic.calls('token', { grantType: 'refresh_token' })).toBe(refreshes);

    await connect(agent, SEED.desiree);
    const back = await agent.get('/launch/patient').expect(200);
    expect(back.text).toContain('✅ Connected');
    expect(back.text).not.toContain('This connection ended');
    expect(await rows()).toEqual([
      { ended_at: null, access_token_enc: expect.any(String), refresh_token_enc: expect.any(String) },
    ]);
  });

  it("refuses sign-in CSRF: an attacker's unfinished launch cannot sign a victim in, nor replace their session", async () => {
    // The attacker starts anonymously and signs in at MyChart as their own patient, then stops.
    const attacker = t.agent();
    const start = await attacker.get('/fhir/epic-connect').query({ org: slug }).expect(303);
    const back = await epic.authorizeAsUser(start.headers.location, {
      user: { kind: 'patient', patientId: SEED.derrick },
    });
    const callback = new URL(back.location!);
    // The victim is a signed-in patient who follows the attacker's link.
    const victimUser = await new TestFactory(t).user(Role.Patient, orgId);
    const victim = await signIn(t, victimUser);
    const refused = await victim.agent.get(callback.pathname + callback.search).expect(400);
    expect(refused.text).toContain('started in another browser');
    expect(refused.text).toContain('Connect my account');
    // Still themselves, with no account linked to the attacker's patient.
    const account = await victim.agent.get('/account').expect(200);
    expect(account.text).toContain(victimUser.email);
    const [linked] = await t.dataSource.query<{ fhir_user: string | null }[]>(
      'SELECT fhir_user FROM app_user WHERE id = $1',
      [victimUser.id],
    );
    expect(linked.fhir_user).toBeNull();
    // An anonymous victim is not signed in either.
    const anonymous = t.agent();
    await anonymous.get(callback.pathname + callback.search).expect(400);
    await anonymous.get('/launch/patient').expect(303);
  });

  it('refuses an unknown organization with a 400 page', async () => {
    const res = await t.http().get('/fhir/epic-connect').query({ org: 'no-such-org' }).expect(400);
    expect(res.headers.location).toBeUndefined();
  });
});
