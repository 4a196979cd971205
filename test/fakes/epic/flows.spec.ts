// A confidential client driving the fake through whole flows with openid-client, the library the app uses.
import * as oidc from 'openid-client';

// The public entry point the app's tests import (`test/fakes/epic`).
import {
  createClientKey,
  SEED,
  startFakeEpic,
  startJwksHost,
  type ClientKey,
  type FakeEpic,
  type FakeEpicClient,
  type JwksHost,
} from '.';
import { fhirGet } from './spec-helpers';

const REDIRECT = 'http://127.0.0.1:3000/fhir/epic-callback';

describe('fake Epic: whole flows with openid-client', () => {
  let epic: FakeEpic;
  let jwks: JwksHost;
  let es384: ClientKey;
  let rs384: ClientKey;

  beforeAll(async () => {
    epic = await startFakeEpic();
    es384 = await createClientKey('ES384');
    rs384 = await createClientKey('RS384');
    jwks = await startJwksHost([es384.publicJwk, rs384.publicJwk]);
  });
  afterAll(async () => {
    await epic.close();
    await jwks.close();
  });

  /** SMART discovery from the FHIR base, as an app does after an EHR launch. */
  async function smartConfig(client: FakeEpicClient, auth: oidc.ClientAuth): Promise<oidc.Configuration> {
    const res = await fetch(`${epic.fhirBase}/.well-known/smart-configuration`, {
      headers: { 'Epic-Client-ID': client.clientId },
    });
    const config = new oidc.Configuration(
      (await res.json()) as oidc.ServerMetadata,
      client.clientId,
      {},
      auth,
    );
    oidc.allowInsecureRequests(config);
    return config;
  }

  /** Epic wants `aud` = the exact token URL, where oauth4webapi puts the issuer (docs/epic-and-smart.md §3). */
  function privateKeyJwt(key: ClientKey): oidc.ClientAuth {
    return oidc.PrivateKeyJwt(
      { key: key.privateKey, kid: key.kid },
      {
        [oidc.modifyAssertion]: (_header, payload) => {
          payload.aud = epic.tokenUrl;
        },
      },
    );
  }

  it('standalone provider launch: OIDC discovery, client_secret_basic, PKCE, id_token, FHIR read', async () => {
    const client = epic.registerClient({ redirectUris: [REDIRECT] });
    const config = await oidc.discovery(
      new URL(epic.issuer),
      client.clientId,
      undefined,
      oidc.ClientSecretBasic(client.secret),
      {
        execute: [oidc.allowInsecureRequests, oidc.enableNonRepudiationChecks], // id_token signature checked against jwks_uri
      },
    );
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid fhirUser',
      aud: epic.fhirBase,
      state,
      nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const authorized = await epic.authorizeAsUser(url);
    expect(authorized.status).toBe(302);
    expect(new URL(authorized.location!).searchParams.has('iss')).toBe(false); // Epic sends code and state only

    const tokens = await oidc.authorizationCodeGrant(config, new URL(authorized.location!), {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
    });
    expect(tokens.token_type).toBe('bearer');
    expect(tokens.expires_in).toBe(3600);
    expect(tokens.refresh_token).toBeUndefined(); // no persistent access
    expect(tokens.patient).toBeUndefined(); // provider standalone launches get no patient
    expect(tokens.state).toBe(state);
    expect(tokens.scope).toBe(
      'user/Patient.read user/Observation.read user/Encounter.read user/Practitioner.read openid fhirUser',
    );
    const claims = tokens.claims()!;
    expect(claims.iss).toBe(epic.issuer);
    expect(claims.aud).toBe(client.clientId);
    expect(claims.fhirUser).toBe(`${epic.fhirBase}/Practitioner/${SEED.practitioner}`);
    expect(claims.exp - claims.iat).toBe(300);
    expect(epic.calls('jwks')).toBe(1);

    const res = await oidc.fetchProtectedResource(
      config,
      tokens.access_token,
      new URL(`${epic.fhirBase}/Patient/${SEED.derrick}`),
      'GET',
    );
    expect(res.status).toBe(200);
    expect(((await res.json()) as { id: string }).id).toBe(SEED.derrick);

    const basic = epic.requests('token').at(-1)!;
    expect(basic.form?.client_secret).toBeUndefined();
    expect(String(basic.headers.authorization)).toMatch(/^Basic /);
  });

  it('standalone MyChart launch: client_secret_post, patient context, static refresh token', async () => {
    const client = epic.registerClient({
      redirectUris: [REDIRECT],
      audience: 'patient',
      persistentAccess: true,
    });
    const config = await smartConfig(client, oidc.ClientSecretPost(client.secret));
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid fhirUser launch/patient offline_access',
      aud: epic.fhirBase,
      state: 's1',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const authorized = await epic.authorizeAsUser(url, {
      user: { kind: 'patient', patientId: SEED.derrick },
    });
    const tokens = await oidc.authorizationCodeGrant(config, new URL(authorized.location!), {
      pkceCodeVerifier: verifier,
      expectedState: 's1',
      idTokenExpected: true,
    });
    expect(tokens.patient).toBe(SEED.derrick);
    expect(tokens['__epic.dstu2.patient']).toEqual(expect.any(String));
    expect(tokens.refresh_token).toEqual(expect.any(String));
    expect(tokens.scope).not.toContain('offline_access'); // Epic may not echo it (smart-on-fhir/client-js#138)
    expect(tokens.claims()!.fhirUser).toBe(`${epic.fhirBase}/Patient/${SEED.derrick}`);

    // Epic: a refresh returns no new refresh token, and the old one keeps working.
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.refresh_token).toBeUndefined();
    expect(refreshed.access_token).not.toBe(tokens.access_token);
    expect(Object.keys(refreshed).sort()).toEqual(['access_token', 'expires_in', 'scope', 'token_type']);
    const again = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(again.access_token).not.toBe(refreshed.access_token);
    expect(epic.calls('token', { grantType: 'refresh_token' })).toBe(2);

    const own = await oidc.fetchProtectedResource(
      config,
      again.access_token,
      new URL(`${epic.fhirBase}/Patient/${SEED.derrick}`),
      'GET',
    );
    expect(own.status).toBe(200);
    const other = await oidc.fetchProtectedResource(
      config,
      again.access_token,
      new URL(`${epic.fhirBase}/Patient/${SEED.camila}`),
      'GET',
    );
    expect(other.status).toBe(403);
  });

  it('EHR launch: launch token, POST authorize, private_key_jwt (ES384 via JWK Set URL), launch context', async () => {
    const client = epic.registerClient({ redirectUris: [REDIRECT], jwksUrl: jwks.url });
    const { iss, launch } = epic.launchContext({
      patient: SEED.camila,
      encounter: SEED.camilaEncounter,
      clientId: client.clientId,
    });
    expect(iss).toBe(epic.fhirBase);
    const config = await smartConfig(client, privateKeyJwt(es384));
    const verifier = oidc.randomPKCECodeVerifier();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'launch openid fhirUser',
      aud: iss,
      launch,
      state: 'ehr-state',
      nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    // Epic recommends POST for EHR launches (docs/epic-and-smart.md §2).
    const authorized = await epic.authorizeAsUser(url, { method: 'POST' });
    expect(epic.requests('authorize').at(-1)!.method).toBe('POST');
    const tokens = await oidc.authorizationCodeGrant(config, new URL(authorized.location!), {
      pkceCodeVerifier: verifier,
      expectedState: 'ehr-state',
      expectedNonce: nonce,
    });
    expect(tokens.patient).toBe(SEED.camila);
    expect(tokens.encounter).toBe(SEED.camilaEncounter);
    expect(tokens.need_patient_banner).toBe('false');
    expect(tokens.smart_style_url).toEqual(expect.stringMatching(/^http:\/\/127\.0\.0\.1:/));
    expect(tokens.claims()!.fhirUser).toBe(`${epic.fhirBase}/Practitioner/${SEED.practitioner}`);
    const assertion = epic.requests('token').at(-1)!.form!;
    expect(assertion.client_assertion_type).toBe('urn:ietf:params:oauth:client-assertion-type:jwt-bearer');

    // The launch token is one-time.
    const replay = await epic.authorizeAsUser(url, { method: 'POST' });
    expect(replay.error).toBe('invalid_request');
    expect(replay.errorDescription).toMatch(/invalid_launch_token/);
  });

  it('backend services: client_credentials with an RS384 assertion, no refresh token, 3600 s', async () => {
    const client = epic.registerClient({ audience: 'backend', jwksUrl: jwks.url });
    const config = await smartConfig(client, privateKeyJwt(rs384));
    const tokens = await oidc.clientCredentialsGrant(config);
    expect(tokens.expires_in).toBe(3600);
    expect(tokens.refresh_token).toBeUndefined();
    expect(tokens.scope).toBe(
      'system/Patient.read system/Observation.read system/Encounter.read system/Practitioner.read',
    );
    const res = await fhirGet(epic, `Observation?patient=${SEED.derrick}`, tokens.access_token);
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(2);
  });

  it('rolling refresh: each refresh returns a new refresh token and the old one dies', async () => {
    const client = epic.registerClient({
      redirectUris: [REDIRECT],
      persistentAccess: true,
      refreshMode: 'rolling',
    });
    const config = await smartConfig(client, oidc.ClientSecretBasic(client.secret));
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid',
      state: 'r',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const authorized = await epic.authorizeAsUser(url);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(authorized.location!), {
      pkceCodeVerifier: verifier,
      expectedState: 'r',
      idTokenExpected: true,
    });
    const first = tokens.refresh_token!;
    const second = (await oidc.refreshTokenGrant(config, first)).refresh_token!;
    expect(second).toEqual(expect.any(String));
    expect(second).not.toBe(first);
    await expect(oidc.refreshTokenGrant(config, first)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(epic.inspectToken(first)).toMatchObject({ kind: 'refresh', active: false });
    expect(epic.inspectToken(second)).toMatchObject({ kind: 'refresh', active: true });
  });
});
