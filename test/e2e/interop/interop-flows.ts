import TestAgent from 'supertest/lib/agent';

import { FhirClientService } from 'src/fhir-client/fhir-client.service';

import {
  authorizeAtFake,
  CALLBACK,
  ConnectionOptions,
  registeredOrganization,
  setStoredExpiry,
  SignedIn,
} from 'test/factories/epic-connection';
import { testSecret } from 'test/factories/secrets';
import { FakeEpic, FakeEpicOptions, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, listenOnLoopback, TestApp } from 'test/setup/test-app';

/**
 * One server behaviour to interoperate with: the fake's switches, and how its clients refresh.
 * Every flow the product has runs against each profile (interop-*.e2e-spec.ts).
 */
export interface InteropProfile {
  name: string;
  server: FakeEpicOptions;
  refreshMode?: 'static' | 'rolling';
}

/** What the flows need from the spec file: one app (passport is process-wide) listening on loopback. */
export interface InteropApp {
  t: TestApp;
  jwksUrl: string;
}

interface Layer {
  ok: boolean;
  message: string;
  steps: { name: string; ok: boolean; message: string }[];
}

/** A secret shaped like Epic's (base64 with `+ / =`), whose two Basic encodings differ. */
const epicLikeSecret = () => `${testSecret('interop')}+/A=`;

/**
 * One spec file's suite: one app listening on loopback (passport is process-wide, so one app per
 * file), and every flow against each profile.
 */
export function describeInteropProfiles(title: string, profiles: InteropProfile[]): void {
  describe(`interoperability: ${title}`, () => {
    let app: InteropApp;
    beforeAll(async () => {
      const t = await createTestApp();
      // The factory's organizations are in the sandbox environment: its key set and URL.
      app = { t, jwksUrl: `${await listenOnLoopback(t)}/.well-known/jwks-sandbox.json` };
    });
    afterAll(() => app.t.close());
    for (const profile of profiles) describeInteropProfile(profile, () => app);
  });
}

/**
 * Registers the profile's describe block: the organization connection with a client secret
 * (connect, test, refresh, terminal failure, disconnect, reconnect), the provider EHR launch, the
 * patient standalone launch, private_key_jwt, and a backend service's renewal.
 */
function describeInteropProfile(profile: InteropProfile, app: () => InteropApp): void {
  describe(profile.name, () => {
    let epic: FakeEpic;
    let t: TestApp;
    let fhir: FhirClientService;

    beforeAll(async () => {
      epic = await startFakeEpic(profile.server);
      t = app().t;
      fhir = t.app.get(FhirClientService);
    });
    afterAll(() => epic.close());
    afterEach(() => epic.clearFaults());

    const generic = profile.server.flavor === 'smart';
    const options = (extra: ConnectionOptions = {}): ConnectionOptions => ({
      ...(profile.refreshMode ? { refreshMode: profile.refreshMode } : {}),
      ...extra,
    });

    const status = async (admin: SignedIn, orgId: string) =>
      (await admin.agent.get('/fhir/epic-status').query({ org: orgId }).expect(200)).body as {
        state: string;
        connected: boolean;
        expired: boolean;
        lastError: string | null;
      };

    const testConnection = async (admin: SignedIn, orgId: string) =>
      (
        await admin.agent
          .post('/fhir/test-epic-connection')
          .set('x-csrf-token', admin.csrf)
          .send({ org: orgId })
          .expect(200)
      ).body as { ok: boolean; configuration: Layer; live: Layer };

    const connect = async (admin: SignedIn, orgId: string) => {
      const callback = await authorizeAtFake(epic, admin, orgId);
      await admin.agent.get(callback).expect(303);
    };

    /** Time passes: the stored token and the server's tokens are expired. */
    const expire = async (orgId: string) => {
      await setStoredExpiry(t, orgId, -60_000);
      epic.expireAccessTokens();
    };

    it('organization with a client secret: connect, test, refresh, terminal failure, disconnect, reconnect', async () => {
      const { orgId, admin, clientId } = await registeredOrganization(
        t,
        epic,
        options({ secret: epicLikeSecret() }),
      );

      // Test before connecting: the credentials check proves the secret without a sign-in.
      const before = await testConnection(admin, orgId);
      expect(before.configuration.ok).toBe(true);
      expect(before.configuration.steps.find((s) => s.name === 'credentials')).toMatchObject({ ok: true });

      await connect(admin, orgId);
      expect(await status(admin, orgId)).toMatchObject({
        state: 'connected',
        connected: true,
        expired: false,
      });

      const tested = await testConnection(admin, orgId);
      expect(tested.live).toMatchObject({ ok: true });

      // Refresh: an expired token is renewed before the read, and the read succeeds.
      await expire(orgId);
      const patient = await fhir.forOrganization(orgId).read('Patient', SEED.camila);
      expect(patient.id).toBe(SEED.camila);
      expect(await status(admin, orgId)).toMatchObject({ state: 'connected', expired: false });
      // A second read uses the renewed token (a short-lived one too): no refresh before every call.
      const refreshes = epic.calls('token', { grantType: 'refresh_token' });
      await fhir.forOrganization(orgId).read('Patient', SEED.camila);
      expect(epic.calls('token', { grantType: 'refresh_token' })).toBe(refreshes);

      // Terminal failure: the server revoked the grant; the connection says re-authenticate.
      epic.revokeClientGrants(clientId);
      await expire(orgId);
      await expect(fhir.forOrganization(orgId).read('Patient', SEED.camila)).rejects.toThrow(
        /Re-authenticate|reconnect/i,
      );
      const dead = await status(admin, orgId);
      expect(dead).toMatchObject({ state: 'expired', connected: false, expired: true });
      expect(dead.lastError).toMatch(/invalid_grant/);
      if (generic) {
        // A server that is not Epic is not called Epic.
        expect(dead.lastError).not.toMatch(/\bEpic\b/);
        expect(dead.lastError).toMatch(/The EHR|the EHR/);
        const messages = [...before.configuration.steps, ...tested.live.steps].map((s) => s.message);
        for (const message of messages) expect(message).not.toMatch(/\bEpic\b/);
      }
      // It stays dead: no more calls with the dead refresh token.
      const calls = epic.calls('token', { grantType: 'refresh_token' });
      await expect(fhir.forOrganization(orgId).read('Patient', SEED.camila)).rejects.toThrow();
      expect(epic.calls('token', { grantType: 'refresh_token' })).toBe(calls);

      // Reconnect, then disconnect.
      await connect(admin, orgId);
      expect(await status(admin, orgId)).toMatchObject({ state: 'connected' });
      await admin.agent
        .post('/fhir/epic-disconnect')
        .set('x-csrf-token', admin.csrf)
        .send({ org: orgId })
        .expect(200);
      expect(await status(admin, orgId)).toMatchObject({ connected: false });

      // The Basic encoding the server takes was learned once and remembered for the organization.
      const refusedClient = epic
        .requests('token')
        .filter(
          (r) =>
            r.clientId === clientId && (r.responseBody as { error?: string })?.error === 'invalid_client',
        );
      expect(refusedClient.length).toBeLessThanOrEqual(1);
      const [{ detected }] = await t.dataSource.query<{ detected: string }[]>(
        'SELECT epic_basic_encoding_detected AS detected FROM organization WHERE id = $1',
        [orgId],
      );
      expect(detected).toBe(profile.server.basicAuthDecoding === 'raw' ? 'raw' : 'form-urlencoded');
    });

    it('provider EHR launch lands on the patient', async () => {
      const { orgId, clientId } = await registeredOrganization(
        t,
        epic,
        options({ secret: epicLikeSecret() }),
      );
      const agent = t.agent();
      const { iss, launch } = epic.launchContext({ patient: SEED.camila, clientId });
      // Several organizations of this spec share the server: the launch URL names one.
      const start = await agent
        .get('/fhir/epic-launch')
        .query({ iss, launch, org: await slugOf(t, orgId) })
        .expect(303);
      const back = await epic.authorizeAsUser(start.headers.location);
      const page = await followCallback(agent, back.location!);
      expect(page).toMatch(/id="launch-patient">Camila [^<]*Lopez/);
    });

    it("patient standalone launch shows the patient's name and observations", async () => {
      const { orgId, clientId } = await registeredOrganization(
        t,
        epic,
        options({
          audience: 'patient',
          secret: epicLikeSecret(),
          scopes: 'patient/Patient.read patient/Observation.read',
        }),
      );
      const agent = t.agent();
      const start = await agent
        .get('/fhir/epic-connect')
        .query({ org: await slugOf(t, orgId) })
        .expect(303);
      const back = await epic.authorizeAsUser(start.headers.location, {
        user: { kind: 'patient', patientId: SEED.camila },
      });
      const page = await followCallback(agent, back.location!);
      expect(page).toMatch(/id="patient-name">Camila [^<]*Lopez/);
      expect(page).toContain('Recent observations');
      expect(page).toMatch(/<ul class="observations"><li>/);

      // The server ends the patient's grant: the page says so, in the server's own name.
      epic.revokeClientGrants(clientId);
      epic.expireAccessTokens();
      await t.dataSource.query(
        `UPDATE epic_credential SET expires_at = now() - interval '1 minute'
          WHERE organization_id = $1 AND user_id IS NOT NULL`,
        [orgId],
      );
      const ended = (await agent.get('/launch/patient').expect(200)).text;
      expect(ended).toContain('❌ Expired');
      expect(ended).toMatch(/invalid_grant/);
      if (generic) expect(ended).not.toMatch(/\bEpic\b/);
    });

    it('private_key_jwt: connect and refresh with client assertions', async () => {
      const { orgId, admin } = await registeredOrganization(t, epic, options({ jwksUrl: app().jwksUrl }));
      const tested = await testConnection(admin, orgId);
      expect(tested.configuration.steps.find((s) => s.name === 'credentials')).toMatchObject({ ok: true });
      await connect(admin, orgId);
      await expire(orgId);
      expect((await fhir.forOrganization(orgId).read('Patient', SEED.camila)).id).toBe(SEED.camila);
      const last = epic.requests('token', { grantType: 'refresh_token' }).at(-1)!;
      expect(last.status).toBe(200);
      expect(last.form!.client_assertion).toBeDefined();
    });

    it('backend service: connect now, then renew when the token ends', async () => {
      const { orgId, admin } = await registeredOrganization(t, epic, {
        jwksUrl: app().jwksUrl,
        backend: {},
        scopes: 'system/Patient.read system/Observation.read',
      });
      await admin.agent.post(`/connect_epic/${orgId}`).type('form').send({ _csrf: admin.csrf }).expect(303);
      expect(await status(admin, orgId)).toMatchObject({ state: 'connected' });
      const grants = epic.calls('token', { grantType: 'client_credentials' });
      await expire(orgId);
      expect((await fhir.forOrganization(orgId).read('Patient', SEED.camila)).id).toBe(SEED.camila);
      expect(epic.calls('token', { grantType: 'client_credentials' })).toBe(grants + 1);
    });
  });
}

async function slugOf(t: TestApp, orgId: string): Promise<string> {
  const [{ slug }] = await t.dataSource.query<{ slug: string }[]>(
    'SELECT slug FROM organization WHERE id = $1',
    [orgId],
  );
  return slug;
}

/** The browser comes back from the server to the app's callback, then follows the app's redirect. */
async function followCallback(agent: TestAgent, location: string): Promise<string> {
  const callback = new URL(location);
  expect(callback.origin + callback.pathname).toBe(CALLBACK);
  const res = await agent.get(callback.pathname + callback.search).expect(303);
  return (await agent.get(res.headers.location).expect(200)).text;
}
