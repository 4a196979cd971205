import { decodeJwt } from 'jose';

import { ScheduledCheckService } from 'src/connection-health/scheduled-check.service';
import { FhirClientError, FhirErrorKind } from 'src/fhir-client/fhir-client.errors';
import { FhirClientService } from 'src/fhir-client/fhir-client.service';

import { registeredOrganization, setStoredExpiry, SignedIn } from 'test/factories/epic-connection';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, listenOnLoopback, TestApp } from 'test/setup/test-app';

const MINUTE = 60_000;

/**
 * Backend Services organization connections (SMART Backend Services; docs/epic-and-smart.md §9):
 * client_credentials with a client assertion, system/ scopes, no refresh token; a new token on the
 * margin and on 401.
 */
describe('backend-service organization connections', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let fhir: FhirClientService;
  let jwksUrl: string;

  beforeAll(async () => {
    [t, epic] = await Promise.all([
      createTestApp({ env: { REFRESH_COOLDOWN_SECONDS: '0' } }),
      startFakeEpic(),
    ]);
    jwksUrl = `${await listenOnLoopback(t)}/.well-known/jwks-sandbox.json`; // sandbox organizations
    fhir = t.app.get(FhirClientService);
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });
  afterEach(() => epic.clearFaults());

  const backendOrganization = (mappedToUser = true) =>
    registeredOrganization(t, epic, {
      jwksUrl,
      backend: { mappedToUser },
      scopes: 'system/Patient.read system/Observation.read',
    });

  /** Connect as the admin does: the confirmation page's form, then the registration page. */
  async function connect(admin: SignedIn, orgId: string): Promise<string> {
    const res = await admin.agent
      .post(`/connect_epic/${orgId}`)
      .type('form')
      .send({ _csrf: admin.csrf })
      .expect(303);
    expect(res.headers.location).toBe(`/admin/epic/registration?org=${orgId}`);
    return (await admin.agent.get(res.headers.location).expect(200)).text;
  }

  const grants = (clientId: string) =>
    epic.requests('token').filter((r) => r.clientId === clientId && r.grantType === 'client_credentials');

  const credential = async (orgId: string) =>
    (
      await t.dataSource.query<
        { version: number; grant_type: string; refresh_token_enc: string | null; renewable: boolean }[]
      >(
        `SELECT version, grant_type, refresh_token_enc, renewable FROM epic_credential
          WHERE organization_id = $1 AND user_id IS NULL`,
        [orgId],
      )
    )[0];

  it('connects at once, with no sign-in, and reads with the token', async () => {
    const { orgId, admin, clientId } = await backendOrganization();
    // The interactive entry point sends a backend organization to the POST form instead of Epic.
    const start = await admin.agent.get('/fhir/epic-authorize').query({ org: orgId }).expect(303);
    expect(start.headers.location).toBe(`/connect_epic/${orgId}`);
    const confirm = await admin.agent.get(start.headers.location).expect(200);
    expect(confirm.text).toContain('Connect now');

    const page = await connect(admin, orgId);
    expect(page).toContain('Connected to Epic as a backend service');
    const [grant] = grants(clientId);
    expect(grant.status).toBe(200);
    expect(grant.form!.scope).toBe('system/Patient.read system/Observation.read');
    expect(grant.form!.client_secret).toBeUndefined();
    expect(decodeJwt(grant.form!.client_assertion)).toMatchObject({ iss: clientId, aud: epic.tokenUrl });
    expect(await credential(orgId)).toEqual({
      version: 1,
      grant_type: 'client_credentials',
      refresh_token_enc: null,
      renewable: true,
    });
    const status = await admin.agent.get('/fhir/epic-status').query({ org: orgId }).expect(200);
    expect(status.body).toMatchObject({ state: 'connected', refreshable: true, endsAt: null });

    const patient = await fhir.forOrganization(orgId).read('Patient', SEED.camila);
    expect(patient.id).toBe(SEED.camila);
  });

  it('obtains a new token within the refresh margin, after expiry, and on a 401', async () => {
    const { orgId, admin, clientId } = await backendOrganization();
    await connect(admin, orgId);
    const client = fhir.forOrganization(orgId);

    await setStoredExpiry(t, orgId, MINUTE); // inside TOKEN_REFRESH_MARGIN_SECONDS
    await client.read('Patient', SEED.camila);
    expect(grants(clientId)).toHaveLength(2);
    expect((await credential(orgId)).version).toBe(2);

    await setStoredExpiry(t, orgId, -MINUTE);
    await client.read('Patient', SEED.camila);
    expect(grants(clientId)).toHaveLength(3);

    epic.expireAccessTokens(); // the stored expiry says an hour left; Epic says no
    await client.read('Patient', SEED.camila);
    expect(grants(clientId)).toHaveLength(4);
    expect(await credential(orgId)).toMatchObject({ version: 4, refresh_token_enc: null });
    expect(grants(clientId).every((g) => g.status === 200)).toBe(true);
    // Every grant carried its own assertion.
    expect(new Set(grants(clientId).map((g) => decodeJwt(g.form!.client_assertion).jti)).size).toBe(4);
  });

  it('is renewed by the scheduled check like any connection', async () => {
    const { orgId, admin, clientId } = await backendOrganization();
    await connect(admin, orgId);
    await setStoredExpiry(t, orgId, MINUTE);
    const counts = await t.app.get(ScheduledCheckService).tick();
    expect(counts?.refreshed).toBeGreaterThanOrEqual(1);
    expect(grants(clientId)).toHaveLength(2);
  });

  it('says the client is not mapped to an Epic user (unauthorized_client), and stores nothing', async () => {
    const { orgId, admin } = await backendOrganization(false);
    const page = await connect(admin, orgId);
    expect(page).toContain('Not connected:');
    expect(page).toContain('has not mapped this client ID to an Epic user');
    expect(await credential(orgId)).toBeUndefined();
    const status = await admin.agent.get('/fhir/epic-status').query({ org: orgId }).expect(200);
    expect(status.body.lastError).toMatch(/unauthorized_client/);
  });

  it('keeps its token when the mapping is removed at Epic, and says why', async () => {
    const { orgId, admin, clientId } = await backendOrganization();
    await connect(admin, orgId);
    epic.registerClient({ clientId, audience: 'backend', jwksUrl, mappedToUser: false });
    await setStoredExpiry(t, orgId, -MINUTE);
    epic.expireAccessTokens();

    const error = await fhir
      .forOrganization(orgId)
      .read('Patient', SEED.camila)
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(FhirClientError);
    expect((error as FhirClientError).kind).toBe(FhirErrorKind.Unavailable);
    expect((error as FhirClientError).message).toMatch(/not mapped this client ID to an Epic user/);
    // Nothing to re-consent: the credential stays, the state is an error with the reason.
    expect(await credential(orgId)).toMatchObject({ version: 1, grant_type: 'client_credentials' });
    const status = await admin.agent.get('/fhir/epic-status').query({ org: orgId }).expect(200);
    expect(status.body).toMatchObject({
      state: 'error',
      lastError: expect.stringMatching(/unauthorized_client/),
    });

    // Mapped again at Epic: the next attempt recovers without anyone signing in.
    epic.registerClient({ clientId, audience: 'backend', jwksUrl, mappedToUser: true });
    await fhir.forOrganization(orgId).read('Patient', SEED.camila);
    const recovered = await admin.agent.get('/fhir/epic-status').query({ org: orgId }).expect(200);
    expect(recovered.body).toMatchObject({ state: 'connected', lastError: null });
  });

  it('passes the connection test, which names the JWK Set URL and skips the authorize step', async () => {
    const { orgId, admin } = await backendOrganization();
    await connect(admin, orgId);
    const res = await admin.agent
      .post('/fhir/test-epic-connection')
      .set('x-csrf-token', admin.csrf)
      .send({ org: orgId })
      .expect(200);
    expect(res.body.ok).toBe(true);
    const steps = [...res.body.configuration.steps, ...res.body.live.steps] as {
      name: string;
      message: string;
    }[];
    expect(steps.map((step) => step.name)).toEqual([
      'registration',
      'discovery',
      'credentials',
      'token',
      'metadata',
      'patient',
    ]);
    expect(steps[0].message).toContain('private_key_jwt (RS384 key)');
    expect(steps[0].message).toContain('/.well-known/jwks-sandbox.json');
  });

  it('refuses user launches: a backend client cannot sign anyone in', async () => {
    const { orgId } = await backendOrganization();
    const [{ slug }] = await t.dataSource.query<{ slug: string }[]>(
      'SELECT slug FROM organization WHERE id = $1',
      [orgId],
    );
    const res = await t.agent().get('/fhir/epic-connect').query({ org: slug }).expect(400);
    expect(res.text).toContain('connects to Epic as a backend service');
    expect(res.headers.location).toBeUndefined();
  });

  it('lists only system scopes and the JWK Set URL to register', async () => {
    const { orgId, admin } = await backendOrganization();
    const info = await admin.agent.get('/fhir/epic-registration').query({ org: orgId }).expect(200);
    expect(info.body).toMatchObject({
      connectionMode: 'backend',
      tokenAuthMethod: 'private_key_jwt',
      environment: 'sandbox',
      jwksUrl: 'http://localhost:3000/.well-known/jwks-sandbox.json',
      scopes: { organization: ['system/Patient.read', 'system/Observation.read'] },
    });
    expect(info.body.scopes.providerEhrLaunch).toBeUndefined();
  });
});
