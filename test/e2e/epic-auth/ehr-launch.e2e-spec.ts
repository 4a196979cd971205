import TestAgent from 'supertest/lib/agent';

import { Role } from 'src/users/user.types';

import { signIn, TestFactory } from 'test/factories';
import { CALLBACK, registeredOrganization } from 'test/factories/epic-connection';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

/** Provider EHR launch (docs/epic-and-smart.md §7): Epic opens /fhir/epic-launch?iss=…&launch=…. */
describe('provider EHR launch', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let orgId: string;
  let clientId: string;

  beforeAll(async () => {
    [t, epic] = await Promise.all([createTestApp(), startFakeEpic()]);
    ({ orgId, clientId } = await registeredOrganization(t, epic, {
      scopes: 'user/Patient.read user/Encounter.read',
    }));
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });

  /** Epic launches the app: returns the agent (one browser) and Epic's authorize URL it was sent to. */
  async function launch(
    agent: TestAgent,
    context: { patient?: string; encounter?: string; practitioner?: string } = {
      patient: SEED.camila,
      encounter: SEED.camilaEncounter,
    },
    issOverride?: (iss: string) => string,
  ): Promise<URL> {
    const { iss, launch: token } = epic.launchContext({ ...context, clientId });
    const res = await agent
      .get('/fhir/epic-launch')
      .query({ iss: issOverride ? issOverride(iss) : iss, launch: token })
      .expect(303);
    return new URL(res.headers.location);
  }

  /** Epic's side (the clinician is already signed in to Epic) and the callback, in `agent`. */
  async function complete(agent: TestAgent, authorize: URL): Promise<string> {
    const back = await epic.authorizeAsUser(authorize);
    const callback = new URL(back.location!);
    expect(callback.origin + callback.pathname).toBe(CALLBACK);
    const res = await agent.get(callback.pathname + callback.search).expect(303);
    expect(res.headers.location).toMatch(/^\/launch\/provider\/[0-9a-f-]{36}$/);
    return res.headers.location;
  }

  it('redirects to Epic with launch, aud = iss and the provider scopes, then lands on the patient', async () => {
    const agent = t.agent();
    const authorize = await launch(agent);
    expect(authorize.origin + authorize.pathname).toBe(epic.authorizeUrl);
    expect(authorize.searchParams.get('aud')).toBe(epic.fhirBase);
    expect(authorize.searchParams.get('launch')).toBeTruthy();
    expect(authorize.searchParams.get('scope')).toBe(
      'launch openid fhirUser user/Patient.read user/Encounter.read',
    );
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');

    const page = await agent.get(await complete(agent, authorize)).expect(200);
    expect(page.text).toMatch(/id="launch-patient">Camila [^<]*Lopez/);
    expect(page.text).toContain('id="launch-encounter"');
    const token = epic.requests('token').at(-1)!.responseBody as Record<string, string>;
    expect(page.text).not.toContain(token.access_token);

    const [stored] = await t.dataSource.query<{ patient_id: string; user_id: string; purpose: string }[]>(
      `SELECT patient_id, user_id, purpose FROM epic_credential WHERE organization_id = $1 AND user_id IS NOT NULL`,
      [orgId],
    );
    expect(stored).toMatchObject({ patient_id: SEED.camila, purpose: 'provider' });
    // The organization's own connection is untouched.
    const org = await t.dataSource.query<{ is_connected: boolean; last_error: string | null }[]>(
      `SELECT COALESCE(s.is_connected, false) AS is_connected, s.last_error
         FROM organization o LEFT JOIN organization_connection s ON s.organization_id = o.id WHERE o.id = $1`,
      [orgId],
    );
    expect(org[0]).toEqual({ is_connected: false, last_error: null });
  });

  it('signs the provider in on a new session id (no fixation)', async () => {
    const agent = t.agent();
    const first = await agent.get('/login').expect(200); // an anonymous session, with its cookie
    const sessionCookie = (res: { headers: Record<string, unknown> }) =>
      ([] as string[])
        .concat((res.headers['set-cookie'] as string[] | undefined) ?? [])
        .find((c) => c.startsWith('ec.sid='));
    const before = sessionCookie(first)!.split(';')[0];
    const authorize = await launch(agent);
    const back = await epic.authorizeAsUser(authorize);
    const callback = new URL(back.location!);
    const res = await agent.get(callback.pathname + callback.search).expect(303);
    const after = sessionCookie(res)?.split(';')[0];
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
  });

  it('normalizes iss: a trailing slash and another case still find the organization', async () => {
    const authorize = await launch(
      t.agent(),
      undefined,
      (iss) => `${iss.replace('http://127.0.0.1', 'HTTP://127.0.0.1')}/`,
    );
    expect(authorize.searchParams.get('aud')).toBe(epic.fhirBase);
  });

  it.each<[string, Record<string, string>]>([
    ['an unknown iss', { iss: 'https://fhir.unknown.example/api/FHIR/R4', launch: 'x' }],
    [
      'a lookalike host',
      { iss: 'http://127.0.0.1.evil.test/interconnect-fhir-oauth/api/FHIR/R4', launch: 'x' },
    ],
    ['no iss', { launch: 'x' }],
    ['no launch', { iss: 'ISS' }],
  ])('answers %s with a 400 page and no redirect', async (_name, query) => {
    const res = await t
      .http()
      .get('/fhir/epic-launch')
      .query(query.iss === 'ISS' ? { iss: epic.fhirBase } : query)
      .expect(400);
    expect(res.headers.location).toBeUndefined();
    expect(res.text).toContain('<title>');
  });

  it('accepts a launch POSTed by the EHR (no CSRF token: the iss allow-list and state protect it)', async () => {
    const { iss, launch: token } = epic.launchContext({ patient: SEED.camila, clientId });
    const res = await t
      .agent()
      .post('/fhir/epic-launch')
      .type('form')
      .send({ iss, launch: token })
      .expect(303);
    expect(res.headers.location).toContain(epic.authorizeUrl);
  });

  it('refuses the callback in a browser that did not start the launch, signing nobody in', async () => {
    const starter = t.agent();
    const authorize = await launch(starter);
    const back = new URL((await epic.authorizeAsUser(authorize)).location!);
    // The callback URL carried to another browser (sign-in CSRF): 400, how to start again, no sign-in.
    const victim = t.agent();
    const refused = await victim.get(back.pathname + back.search).expect(400);
    expect(refused.text).toContain('started in another browser');
    expect(refused.text).toContain('launch it again from inside the EHR');
    expect(refused.headers['set-cookie'] ?? []).toEqual([]);
    await victim.get('/launch/patient').expect(303); // still not signed in
    // The state was not spent: the browser that started it completes it.
    const landing = await starter.get(back.pathname + back.search).expect(303);
    await starter.get(landing.headers.location).expect(200);
  });

  it('sets the binding cookie HttpOnly, for the whole site, for as long as a launch may take', async () => {
    const { iss, launch: token } = epic.launchContext({ patient: SEED.camila, clientId });
    const res = await t.agent().get('/fhir/epic-launch').query({ iss, launch: token }).expect(303);
    const cookie = (res.headers['set-cookie'] as unknown as string[]).find((c) =>
      c.startsWith('epic_connect_auth='),
    );
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/Path=\/;/);
    expect(cookie).toMatch(/Max-Age=600/);
    expect(cookie).toMatch(/SameSite=Lax/i); // http in tests; https gets SameSite=None; Secure
  });

  it('keeps two launches in flight in one browser apart', async () => {
    const agent = t.agent();
    const first = await launch(agent, { patient: SEED.camila });
    const second = await launch(agent, { patient: SEED.derrick });
    const derrick = await complete(agent, second);
    expect((await agent.get(derrick).expect(200)).text).toMatch(/id="launch-patient">Derrick/);
    const camila = await complete(agent, first);
    expect((await agent.get(camila).expect(200)).text).toMatch(/id="launch-patient">Camila/);
  });

  it('does not show a launch to anyone but its provider (404), nor to admins (403)', async () => {
    const agent = t.agent();
    const landing = await complete(agent, await launch(agent));
    await t.agent().get(landing).expect(303); // not signed in: to the login page
    const admin = await signIn(t, await new TestFactory(t).user(Role.OrgAdmin, orgId));
    await admin.agent.get(landing).expect(403);
    const other = t.agent();
    // Another clinician (the nurse) launching in their own browser cannot open the first one's launch.
    await complete(other, await launch(other, { patient: SEED.derrick, practitioner: SEED.nurse }));
    await other.get(landing).expect(404);
  });
});
