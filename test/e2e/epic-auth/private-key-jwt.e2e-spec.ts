import { decodeJwt, decodeProtectedHeader } from 'jose';

import { FhirClientService } from 'src/fhir-client/fhir-client.service';
import { Role } from 'src/users/user.types';

import { signIn, TestFactory } from 'test/factories';
import {
  CALLBACK,
  connectedOrganization,
  registeredOrganization,
  setStoredExpiry,
  SignedIn,
} from 'test/factories/epic-connection';
import { FakeEpic, FakeEpicRequest, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, listenOnLoopback, TestApp } from 'test/setup/test-app';

const MINUTE = 60_000;

/**
 * private_key_jwt (RFC 7523; docs/epic-and-smart.md §3): every token call authenticates with a fresh
 * client assertion signed by the service's active key, which the fake verifies by fetching the app's
 * own JWK Set.
 */
describe('private_key_jwt client authentication', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let fhir: FhirClientService;
  let jwksUrl: string;

  beforeAll(async () => {
    [t, epic] = await Promise.all([createTestApp(), startFakeEpic()]);
    // The factory's organizations are in the sandbox environment: its key set and URL.
    jwksUrl = `${await listenOnLoopback(t)}/.well-known/jwks-sandbox.json`;
    fhir = t.app.get(FhirClientService);
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });
  afterEach(() => epic.clearFaults());

  /** The active key of each algorithm of the sandbox set, as published. */
  async function activeKids(): Promise<Record<string, string>> {
    const rows = await t.dataSource.query<{ alg: string; kid: string }[]>(
      `SELECT alg, kid FROM client_signing_key WHERE state = 'active' AND environment = 'sandbox'`,
    );
    return Object.fromEntries(rows.map((r) => [r.alg, r.kid]));
  }

  function tokenCalls(clientId: string): FakeEpicRequest[] {
    return epic.requests('token').filter((r) => r.clientId === clientId);
  }

  /** Checks one token request's client authentication as Epic would, and returns its jti. */
  function expectAssertion(request: FakeEpicRequest, clientId: string, kid: string, alg: string): string {
    expect(request.status).toBe(200);
    expect(request.headers.authorization).toBeUndefined();
    expect(request.form!.client_secret).toBeUndefined();
    expect(request.form!.client_assertion_type).toBe(
      'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    );
    const header = decodeProtectedHeader(request.form!.client_assertion);
    const claims = decodeJwt(request.form!.client_assertion);
    expect(header).toMatchObject({ alg, kid, typ: 'JWT' });
    expect(claims).toMatchObject({ iss: clientId, sub: clientId, aud: epic.tokenUrl });
    expect(typeof claims.jti).toBe('string');
    const now = Date.now() / 1000;
    expect(claims.iat).toBeLessThan(now); // back-dated for clock skew
    expect(claims.nbf).toBe(claims.iat);
    expect(claims.exp! - claims.iat!).toBeLessThanOrEqual(300);
    expect(claims.exp!).toBeGreaterThan(now);
    return claims.jti!;
  }

  it('connects and refreshes with an RS384 assertion the fake verified through the app’s JWK Set', async () => {
    const { orgId, clientId } = await connectedOrganization(t, epic, { jwksUrl });
    const kids = await activeKids();
    await setStoredExpiry(t, orgId, -MINUTE);
    epic.expireAccessTokens();
    await fhir.forOrganization(orgId).read('Patient', SEED.camila);

    const calls = tokenCalls(clientId);
    expect(calls.map((c) => c.grantType)).toEqual(['authorization_code', 'refresh_token']);
    const jtis = calls.map((c) => expectAssertion(c, clientId, kids.RS384, 'RS384'));
    expect(new Set(jtis).size).toBe(jtis.length); // never replayed
    expect(epic.jwksFetches()).toContain(jwksUrl);
    // Nothing of a secret was ever stored for this organization.
    const [row] = await t.dataSource.query<{ client_secret_enc: string | null }[]>(
      'SELECT client_secret_enc FROM organization WHERE id = $1',
      [orgId],
    );
    expect(row.client_secret_enc).toBeNull();
  });

  it('signs with the ES384 key when the organization chooses it', async () => {
    const { clientId } = await connectedOrganization(t, epic, { jwksUrl, assertionAlg: 'ES384' });
    const [call] = tokenCalls(clientId);
    expectAssertion(call, clientId, (await activeKids()).ES384, 'ES384');
  });

  it('refreshes a patient’s own credential with private_key_jwt', async () => {
    const { orgId, clientId } = await registeredOrganization(t, epic, {
      jwksUrl,
      audience: 'patient',
      scopes: 'patient/Patient.read',
    });
    const [{ slug }] = await t.dataSource.query<{ slug: string }[]>(
      'SELECT slug FROM organization WHERE id = $1',
      [orgId],
    );
    const agent = t.agent();
    const start = await agent.get('/fhir/epic-connect').query({ org: slug }).expect(303);
    const back = new URL((await epic.authorizeAsUser(start.headers.location)).location!);
    expect(back.origin + back.pathname).toBe(CALLBACK);
    await agent.get(back.pathname + back.search).expect(303);
    const [credential] = await t.dataSource.query<{ id: string }[]>(
      'SELECT id FROM epic_credential WHERE organization_id = $1 AND user_id IS NOT NULL',
      [orgId],
    );
    await t.dataSource.query('UPDATE epic_credential SET expires_at = $2 WHERE id = $1', [
      credential.id,
      new Date(Date.now() - MINUTE),
    ]);
    epic.expireAccessTokens();

    const patient = await fhir.forCredential(credential.id).read('Patient', SEED.camila);
    expect(patient.id).toBe(SEED.camila);
    const calls = tokenCalls(clientId);
    expect(calls.map((c) => c.grantType)).toEqual(['authorization_code', 'refresh_token']);
    const kid = (await activeKids()).RS384;
    const jtis = calls.map((c) => expectAssertion(c, clientId, kid, 'RS384'));
    expect(new Set(jtis).size).toBe(2);
  });

  it('the fake refuses a replayed assertion, which the app never sends', async () => {
    const { clientId } = await connectedOrganization(t, epic, { jwksUrl });
    const [used] = tokenCalls(clientId);
    const replay = await fetch(epic.tokenUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: 'anything',
        redirect_uri: CALLBACK,
        client_assertion_type: used.form!.client_assertion_type,
        client_assertion: used.form!.client_assertion,
      }),
    });
    // Epic's answer to a bad client assertion: 400 invalid_client with a null description.
    expect(replay.status).toBe(400);
    expect(await replay.json()).toEqual({ error: 'invalid_client', error_description: null });
    expect(epic.requests('token').at(-1)!.rejection).toBe('jti was already used');
  });

  it('saves private_key_jwt without a secret and deletes a stored one', async () => {
    const { orgId, admin, clientId } = await registeredOrganization(t, epic); // with a secret
    const root = await signIn(t, await new TestFactory(t).user(Role.RootAdmin, null));
    const put = (body: Record<string, unknown>, as: SignedIn = root) =>
      as.agent
        .put(`/api/organizations/${orgId}/epic-client`)
        .set('x-csrf-token', as.csrf)
        .send({ clientId, environment: 'sandbox', fhirBaseUrl: epic.fhirBase, ...body });

    const refused = await put({ tokenAuthMethod: 'private_key_jwt', clientSecret: 'typed-anyway' }).expect(
      400,
    );
    expect(refused.body.message).toEqual([
      expect.stringMatching(/clientSecret is not used with private_key_jwt/),
    ]);
    expect((await admin.agent.get(`/api/organizations/${orgId}`).expect(200)).body).toMatchObject({
      tokenAuthMethod: 'client_secret_basic',
      hasClientSecret: true,
    });

    // Epic trusts whatever the service's key signs: only root binds an organization to such a client.
    const forbidden = await put({ tokenAuthMethod: 'private_key_jwt' }, admin).expect(403);
    expect(forbidden.body.message).toEqual([
      expect.stringMatching(/Only a root administrator can set the Epic client/),
    ]);

    const saved = await put({ tokenAuthMethod: 'private_key_jwt', assertionAlg: 'ES384' }).expect(200);
    expect(saved.body).toMatchObject({
      tokenAuthMethod: 'private_key_jwt',
      assertionAlg: 'ES384',
      hasClientSecret: false,
    });
    const [row] = await t.dataSource.query<{ client_secret_enc: string | null }[]>(
      'SELECT client_secret_enc FROM organization WHERE id = $1',
      [orgId],
    );
    expect(row.client_secret_enc).toBeNull();
    const [audit] = await t.dataSource.query<{ detail: Record<string, unknown> }[]>(
      `SELECT detail FROM audit_event WHERE organization_id = $1 AND action = 'epic-client.registered'
        ORDER BY occurred_at DESC LIMIT 1`,
      [orgId],
    );
    expect(audit.detail).toMatchObject({ tokenAuthMethod: 'private_key_jwt', secretRemoved: true });
    // The org admin may still change what is not the binding (the scopes), not the client ID.
    await put({ tokenAuthMethod: 'private_key_jwt', scopes: 'user/Patient.read' }, admin).expect(200);
    await put({ tokenAuthMethod: 'private_key_jwt', clientId: 'someone-elses-client' }, admin).expect(403);

    // The registration page says what to register at Epic instead of asking for a secret.
    const page = await admin.agent.get(`/admin/epic/registration?org=${orgId}`).expect(200);
    expect(page.text).toContain('/.well-known/jwks-sandbox.json');
    expect(page.text).toMatch(/<div data-when-secret hidden>/);
  });

  it('refuses a backend service that would authenticate with a secret', async () => {
    const { orgId, admin, clientId } = await registeredOrganization(t, epic);
    const res = await admin.agent
      .put(`/api/organizations/${orgId}/epic-client`)
      .set('x-csrf-token', admin.csrf)
      .send({
        clientId,
        environment: 'sandbox',
        fhirBaseUrl: epic.fhirBase,
        connectionMode: 'backend',
        scopes: 'system/Patient.read',
      })
      .expect(400);
    expect(res.body.message).toEqual([expect.stringMatching(/authenticates with private_key_jwt/)]);
  });
});
