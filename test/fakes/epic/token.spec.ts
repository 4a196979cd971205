// Every rejection of the token endpoint, client authentication (including private_key_jwt) and response shape.
import { randomUUID } from 'node:crypto';

import { TEST_SECRET_MARKER } from 'test/factories/secrets';
import {
  createClientKey,
  signClientAssertion,
  startJwksHost,
  type ClientKey,
  type JwksHost,
} from './client-keys';
import { startFakeEpic, type FakeEpic } from './fake-epic';
import { SEED } from './fhir-data';
import { obtainCode, obtainTokens, postToken } from './spec-helpers';
import type { FakeEpicClient } from './types';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

describe('fake Epic: token endpoint', () => {
  let epic: FakeEpic;
  let client: FakeEpicClient;

  beforeAll(async () => {
    epic = await startFakeEpic();
    client = epic.registerClient({ persistentAccess: true });
  });
  afterAll(() => epic.close());

  const secretPost = (c: FakeEpicClient = client) => ({ client_id: c.clientId, client_secret: c.secret });

  async function exchange(form: Record<string, string | undefined>, c: FakeEpicClient = client) {
    return postToken(epic, { grant_type: 'authorization_code', ...secretPost(c), ...form });
  }

  function expectError(
    res: { status: number; body: Record<string, unknown> },
    error: string,
    reason?: RegExp,
  ) {
    expect(res.status).toBe(400);
    expect(res.body.error).toBe(error);
    if (reason) expect(epic.requests('token').at(-1)!.rejection).toMatch(reason);
  }

  describe('request format (docs/epic-and-smart.md §3)', () => {
    it('rejects GET, a query string, a JSON body and repeated parameters', async () => {
      const get = await fetch(epic.tokenUrl);
      expect(get.status).toBe(400);
      expect(((await get.json()) as { error: string }).error).toBe('invalid_request');
      expectError(
        await postToken(
          epic,
          { grant_type: 'refresh_token' },
          { url: `${epic.tokenUrl}?grant_type=refresh_token` },
        ),
        'invalid_request',
        /query string/,
      );
      expectError(
        await postToken(
          epic,
          {},
          { headers: { 'content-type': 'application/json' }, rawBody: '{"grant_type":"x"}' },
        ),
        'invalid_request',
        /x-www-form-urlencoded/,
      );
      expectError(
        await postToken(epic, {}, { rawBody: 'grant_type=refresh_token&grant_type=authorization_code' }),
        'invalid_request',
        /repeated/,
      );
    });

    it('rejects a missing or unsupported grant_type', async () => {
      expectError(await postToken(epic, { ...secretPost() }), 'invalid_request', /grant_type is missing/);
      expectError(
        await postToken(epic, { grant_type: 'password', ...secretPost() }),
        'unsupported_grant_type',
      );
    });

    it('answers with no-store caching and the fields Epic sends', async () => {
      const { code, verifier, redirectUri } = await obtainCode(epic, client);
      const res = await exchange({ code, code_verifier: verifier, redirect_uri: redirectUri });
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.body).toEqual({
        access_token: expect.any(String),
        token_type: 'bearer',
        expires_in: 3600,
        scope:
          'user/Patient.read user/Observation.read user/Encounter.read user/Practitioner.read openid fhirUser',
        state: 'state-123',
        refresh_token: expect.any(String),
        id_token: expect.any(String),
      });
      // Long JWT-shaped tokens like the sandbox's; access and refresh tokens carry the test-secret marker.
      expect(String(res.body.access_token).split('.')).toHaveLength(3);
      expect(String(res.body.access_token).length).toBeGreaterThan(600);
      expect(String(res.body.access_token)).toContain(TEST_SECRET_MARKER);
      expect(String(res.body.refresh_token)).toContain(TEST_SECRET_MARKER);
    });
  });

  describe('id_token email claim (setIdTokenEmail)', () => {
    const claims = (idToken: unknown) =>
      JSON.parse(Buffer.from(String(idToken).split('.')[1], 'base64url').toString()) as Record<
        string,
        unknown
      >;
    const idTokenNow = async () => {
      const { code, verifier, redirectUri } = await obtainCode(epic, client);
      const res = await exchange({ code, code_verifier: verifier, redirect_uri: redirectUri });
      expect(res.status).toBe(200);
      return claims(res.body.id_token);
    };
    afterEach(() => epic.setIdTokenEmail(null));

    it('sends no email by default, as Epic documents; the switch adds email and, when given, email_verified', async () => {
      const none = await idTokenNow();
      expect(none).not.toHaveProperty('email');
      expect(none).not.toHaveProperty('email_verified');

      epic.setIdTokenEmail('pat@example.org');
      const plain = await idTokenNow();
      expect(plain.email).toBe('pat@example.org');
      expect(plain).not.toHaveProperty('email_verified');

      epic.setIdTokenEmail('pat@example.org', { verified: false });
      expect(await idTokenNow()).toMatchObject({ email: 'pat@example.org', email_verified: false });
      epic.setIdTokenEmail('doc@example.org', { verified: true });
      expect(await idTokenNow()).toMatchObject({ email: 'doc@example.org', email_verified: true });

      epic.setIdTokenEmail(null);
      expect(await idTokenNow()).not.toHaveProperty('email');
    });
  });

  describe('authorization_code', () => {
    it('rejects a missing, unknown, reused or expired code', async () => {
      expectError(await exchange({ redirect_uri: 'x' }), 'invalid_request', /code is missing/);
      expectError(
        await exchange({ code: 'nope', redirect_uri: 'x' }),
        'invalid_grant',
        /unknown authorization code/,
      );

      const { code, verifier, redirectUri } = await obtainCode(epic, client);
      const first = await exchange({ code, code_verifier: verifier, redirect_uri: redirectUri });
      expect(first.status).toBe(200);
      expectError(
        await exchange({ code, code_verifier: verifier, redirect_uri: redirectUri }),
        'invalid_grant',
        /already used/,
      );
      // RFC 6749 §4.1.2: the tokens issued from a reused code are revoked.
      expect(epic.inspectToken(String(first.body.access_token))).toMatchObject({ active: false });
      expect(epic.inspectToken(String(first.body.refresh_token))).toMatchObject({ active: false });

      const late = await obtainCode(epic, client);
      epic.advanceClock(301_000);
      expectError(
        await exchange({ code: late.code, code_verifier: late.verifier, redirect_uri: late.redirectUri }),
        'invalid_grant',
        /expired/,
      );
    });

    it('rejects a redirect_uri that differs and a code issued to another client', async () => {
      const { code, verifier } = await obtainCode(epic, client);
      expectError(
        await exchange({
          code,
          code_verifier: verifier,
          redirect_uri: 'http://localhost:3000/fhir/Epic-callback',
        }),
        'invalid_grant',
        /redirect_uri differs/,
      );
      const other = epic.registerClient();
      const theirs = await obtainCode(epic, other);
      expectError(
        await exchange({
          code: theirs.code,
          code_verifier: theirs.verifier,
          redirect_uri: theirs.redirectUri,
        }),
        'invalid_grant',
        /another client/,
      );
    });

    it('checks the PKCE verifier', async () => {
      const a = await obtainCode(epic, client);
      expectError(
        await exchange({ code: a.code, redirect_uri: a.redirectUri }),
        'invalid_grant',
        /code_verifier is missing/,
      );
      const b = await obtainCode(epic, client);
      expectError(
        await exchange({ code: b.code, code_verifier: 'x'.repeat(43), redirect_uri: b.redirectUri }),
        'invalid_grant',
        /does not match/,
      );
      const c = await obtainCode(epic, client, {
        code_challenge: undefined,
        code_challenge_method: undefined,
      });
      expectError(
        await exchange({ code: c.code, code_verifier: c.verifier, redirect_uri: c.redirectUri }),
        'invalid_grant',
        /no code_challenge/,
      );
    });
  });

  describe('client authentication', () => {
    it('rejects a wrong secret, an unknown client and a confidential client without credentials, with a null description', async () => {
      const { code, verifier, redirectUri } = await obtainCode(epic, client);
      const form = {
        grant_type: 'authorization_code',
        code,
        code_verifier: verifier,
        redirect_uri: redirectUri,
      };
      const wrong = await postToken(epic, form, { basic: [client.clientId, 'wrong'] });
      expectError(wrong, 'invalid_client', /wrong client secret/);
      // Epic: {"error":"invalid_client","error_description":null} (docs/epic-and-smart.md §12)
      expect(wrong.body.error_description).toBeNull();
      expectError(
        await postToken(epic, form, { basic: ['nobody', 'x'] }),
        'invalid_client',
        /unknown client_id/,
      );
      expectError(
        await postToken(epic, { ...form, client_id: client.clientId }),
        'invalid_client',
        /no credentials/,
      );
      expectError(
        await postToken(epic, { ...form, ...secretPost() }, { basic: [client.clientId, client.secret!] }),
        'invalid_request',
        /more than one/,
      );
      // The code was not spent by the failed attempts.
      expect((await postToken(epic, form, { basic: [client.clientId, client.secret!] })).status).toBe(200);
    });

    it('decodes client_secret_basic as Epic documents (form-urlencoded), or raw with the switch', async () => {
      const tricky = epic.registerClient({ clientId: 'id with space', secret: 'p@ss:w/rd+ü' });
      const basic = (id: string, secret: string) => ({
        authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`,
      });
      const encoded = (v: string) => encodeURIComponent(v).replace(/%20/g, '+');
      const attempt = async (epicUnderTest: FakeEpic, headers: Record<string, string>) =>
        postToken(epicUnderTest, { grant_type: 'refresh_token', refresh_token: 'x' }, { headers });
      // invalid_grant (unknown refresh token) means the client authenticated.
      expect((await attempt(epic, basic(encoded(tricky.clientId), encoded(tricky.secret!)))).body.error).toBe(
        'invalid_grant',
      );
      expect((await attempt(epic, basic(tricky.clientId, 'p@ss:w/rd+ü'))).body.error).toBe('invalid_client');

      const raw = await startFakeEpic({ basicAuthDecoding: 'raw' });
      try {
        const rawClient = raw.registerClient({ clientId: 'id with space', secret: 'p@ss:w/rd+ü' });
        expect((await attempt(raw, basic(rawClient.clientId, rawClient.secret!))).body.error).toBe(
          'invalid_grant',
        );
        expect(
          (await attempt(raw, basic(encoded(rawClient.clientId), encoded(rawClient.secret!)))).body.error,
        ).toBe('invalid_client');
      } finally {
        await raw.close();
      }
    });

    it('follows registration changes: a rotated secret, a removed client', async () => {
      const rotating = epic.registerClient({ secret: 'old-secret', persistentAccess: true });
      const refreshToken = String((await obtainTokens(epic, rotating)).refresh_token);
      const refresh = (secret: string) =>
        postToken(
          epic,
          { grant_type: 'refresh_token', refresh_token: refreshToken },
          { basic: [rotating.clientId, secret] },
        );
      epic.registerClient({ clientId: rotating.clientId, secret: 'new-secret', persistentAccess: true });
      expectError(await refresh('old-secret'), 'invalid_client', /wrong client secret/);
      expect((await refresh('new-secret')).status).toBe(200);
      epic.removeClient(rotating.clientId);
      expectError(await refresh('new-secret'), 'invalid_client', /unknown client_id/);
    });

    it('public clients send only client_id and never get a refresh token', async () => {
      const pub = epic.registerClient({ type: 'public', persistentAccess: true });
      const { code, verifier, redirectUri } = await obtainCode(epic, pub);
      const res = await postToken(epic, {
        grant_type: 'authorization_code',
        client_id: pub.clientId,
        code,
        code_verifier: verifier,
        redirect_uri: redirectUri,
      });
      expect(res.status).toBe(200);
      expect(res.body.refresh_token).toBeUndefined();
      expectError(
        await postToken(epic, {
          grant_type: 'authorization_code',
          client_id: pub.clientId,
          client_secret: 'made-up',
          code: 'x',
          redirect_uri: 'x',
        }),
        'invalid_client',
        /no secret/,
      );
    });
  });

  describe('private_key_jwt (docs/epic-and-smart.md §3)', () => {
    let jwks: JwksHost;
    let key: ClientKey;
    let jwtClient: FakeEpicClient;

    beforeAll(async () => {
      key = await createClientKey('ES384');
      jwks = await startJwksHost([key.publicJwk]);
      jwtClient = epic.registerClient({ jwksUrl: jwks.url, persistentAccess: true });
    });
    afterAll(() => jwks.close());

    /** A refresh attempt with an unknown token: invalid_grant proves the assertion was accepted. */
    async function withAssertion(
      claims: Record<string, unknown> = {},
      signer: ClientKey = key,
      c: FakeEpicClient = jwtClient,
      header: Record<string, unknown> = {},
    ) {
      const assertion = await signClientAssertion(signer, {
        clientId: c.clientId,
        tokenUrl: epic.tokenUrl,
        claims,
        header,
      });
      return postToken(epic, {
        grant_type: 'refresh_token',
        refresh_token: 'unknown',
        client_assertion_type: JWT_BEARER,
        client_assertion: assertion,
      });
    }
    const now = () => Math.floor(Date.now() / 1000);

    it('accepts a correct assertion once: a replayed jti is invalid_client', async () => {
      const jti = randomUUID();
      expect((await withAssertion({ jti })).body.error).toBe('invalid_grant');
      expectError(await withAssertion({ jti }), 'invalid_client', /jti was already used/);
    });

    it.each([
      [
        'aud is the issuer (oauth4webapi default)',
        () => ({ aud: epic.issuer }),
        /aud .* is not the token endpoint/,
      ],
      ['aud is the FHIR base', () => ({ aud: epic.fhirBase }), /not the token endpoint/],
      [
        'exp more than 5 minutes ahead',
        () => ({ iat: undefined, exp: now() + 400 }),
        /more than 5 minutes ahead/,
      ],
      [
        'exp in the past',
        () => ({ iat: now() - 100, nbf: now() - 100, exp: now() - 10 }),
        /exp is in the past/,
      ],
      ['exp missing', () => ({ exp: undefined }), /exp missing/],
      ['iat in the future', () => ({ iat: now() + 60 }), /iat is in the future/],
      ['nbf in the future', () => ({ nbf: now() + 60 }), /nbf is in the future/],
      ['exp - iat over 5 minutes', () => ({ iat: now() - 200, exp: now() + 200 }), /exp - iat/],
      ['jti not a string', () => ({ jti: 12345 }), /jti must be a non-empty string/],
      ['jti longer than 151', () => ({ jti: 'j'.repeat(152) }), /151/],
      ['sub differs from iss', () => ({ sub: 'someone-else' }), /sub must equal iss/],
    ])('rejects %s', async (_name, claims, reason) => {
      expectError(await withAssertion(claims()), 'invalid_client', reason);
    });

    it('rejects a signature by an unregistered key, an unknown kid and a jku that is not the registered URL', async () => {
      const stranger = await createClientKey('ES384', key.kid);
      expectError(await withAssertion({}, stranger), 'invalid_client', /verifies/);
      const unknownKid = await createClientKey('ES384');
      expectError(await withAssertion({}, unknownKid), 'invalid_client', /kid/);
      expectError(
        await withAssertion({}, key, jwtClient, { jku: 'https://evil.example/jwks' }),
        'invalid_client',
        /jku/,
      );
    });

    it('rejects an assertion whose iss is unknown or differs from client_id', async () => {
      const ghost = { ...jwtClient, clientId: 'ghost' };
      expectError(await withAssertion({}, key, ghost), 'invalid_client', /not a known client/);
      const assertion = await signClientAssertion(key, {
        clientId: jwtClient.clientId,
        tokenUrl: epic.tokenUrl,
      });
      const res = await postToken(epic, {
        grant_type: 'refresh_token',
        refresh_token: 'x',
        client_id: client.clientId,
        client_assertion_type: JWT_BEARER,
        client_assertion: assertion,
      });
      expectError(res, 'invalid_client', /differs/);
    });

    it('accepts RS384 with uploaded (static) keys but ES384 only through a JWK Set URL', async () => {
      const rsa = await createClientKey('RS384');
      const ec = await createClientKey('ES384');
      const staticClient = epic.registerClient({ jwks: { keys: [rsa.publicJwk, ec.publicJwk] } });
      expect((await withAssertion({}, rsa, staticClient)).body.error).toBe('invalid_grant');
      expectError(await withAssertion({}, ec, staticClient), 'invalid_client', /alg ES384 not accepted/);
    });

    it('caches the JWK Set like Epic: up to 29 hours, re-fetched on an unknown key or Cache-Control expiry', async () => {
      const rotated = await createClientKey('ES384');
      const host = await startJwksHost([key.publicJwk]);
      try {
        const c = epic.registerClient({ jwksUrl: host.url });
        await withAssertion({}, key, c);
        await withAssertion({}, key, c);
        expect(host.fetches()).toBe(1);
        // Rotation: a new kid is not in the cache, so the fake fetches again.
        host.setKeys([key.publicJwk, rotated.publicJwk]);
        expect((await withAssertion({}, rotated, c)).body.error).toBe('invalid_grant');
        expect(host.fetches()).toBe(2);
        epic.advanceClock(29 * 3600 * 1000 + 1000);
        await withAssertion({}, key, c);
        expect(host.fetches()).toBe(3);
        host.setCacheControl('max-age=60');
        epic.advanceClock(29 * 3600 * 1000 + 1000);
        await withAssertion({}, key, c);
        expect(host.fetches()).toBe(4);
        epic.advanceClock(61_000);
        await withAssertion({}, key, c);
        expect(host.fetches()).toBe(5);
        expect(epic.jwksFetches().filter((u) => u === host.url)).toHaveLength(5);
      } finally {
        await host.close();
      }
    });

    it('extraAssertionAudiences allows a proxy audience', async () => {
      const proxied = await startFakeEpic({
        extraAssertionAudiences: ['https://proxy.example/oauth2/token'],
      });
      try {
        const c = proxied.registerClient({ jwksUrl: jwks.url });
        const assertion = await signClientAssertion(key, {
          clientId: c.clientId,
          tokenUrl: 'https://proxy.example/oauth2/token',
        });
        const res = await postToken(proxied, {
          grant_type: 'refresh_token',
          refresh_token: 'x',
          client_assertion_type: JWT_BEARER,
          client_assertion: assertion,
        });
        expect(res.body.error).toBe('invalid_grant');
      } finally {
        await proxied.close();
      }
    });

    it('tolerates clock skew on iat only with assertionClockToleranceSeconds', async () => {
      const lenient = await startFakeEpic({ assertionClockToleranceSeconds: 30 });
      try {
        const c = lenient.registerClient({ jwksUrl: jwks.url });
        const assertion = await signClientAssertion(key, {
          clientId: c.clientId,
          tokenUrl: lenient.tokenUrl,
          claims: { iat: now() + 20 },
        });
        const res = await postToken(lenient, {
          grant_type: 'refresh_token',
          refresh_token: 'x',
          client_assertion_type: JWT_BEARER,
          client_assertion: assertion,
        });
        expect(res.body.error).toBe('invalid_grant');
      } finally {
        await lenient.close();
      }
    });
  });

  describe('refresh_token', () => {
    it('rejects a missing, unknown, revoked, expired or foreign refresh token', async () => {
      expectError(
        await postToken(epic, { grant_type: 'refresh_token', ...secretPost() }),
        'invalid_request',
        /missing/,
      );
      const refresh = (token: string, c: FakeEpicClient = client) =>
        postToken(epic, { grant_type: 'refresh_token', refresh_token: token, ...secretPost(c) });
      expectError(await refresh('unknown'), 'invalid_grant', /unknown refresh token/);

      const revoked = String((await obtainTokens(epic, client)).refresh_token);
      expect(epic.revokeRefreshToken(revoked)).toBe(true);
      expectError(await refresh(revoked), 'invalid_grant', /revoked/);

      const other = epic.registerClient({ persistentAccess: true });
      const theirs = String((await obtainTokens(epic, other)).refresh_token);
      expectError(await refresh(theirs), 'invalid_grant', /unknown refresh token/);
      expect((await refresh(theirs, other)).status).toBe(200);

      const aging = String((await obtainTokens(epic, client)).refresh_token);
      epic.advanceClock(89 * 24 * 3600 * 1000);
      expect((await refresh(aging)).status).toBe(200);
      epic.advanceClock(2 * 24 * 3600 * 1000);
      expectError(await refresh(aging), 'invalid_grant', /expired/);
    });

    it('is issued only with persistent access, and not when refreshMode is none', async () => {
      expect((await obtainTokens(epic, epic.registerClient())).refresh_token).toBeUndefined();
      const none = epic.registerClient({ persistentAccess: true, refreshMode: 'none' });
      expect((await obtainTokens(epic, none)).refresh_token).toBeUndefined();
    });

    it('rolling mode: reusing a replaced token is invalid_grant, and revoke-grant also kills the newest', async () => {
      const strict = await startFakeEpic({ rollingRefreshReuse: 'revoke-grant' });
      try {
        const c = strict.registerClient({ persistentAccess: true, refreshMode: 'rolling' });
        const refresh = (token: string) =>
          postToken(strict, {
            grant_type: 'refresh_token',
            refresh_token: token,
            client_id: c.clientId,
            client_secret: c.secret,
          });
        const first = String((await obtainTokens(strict, c)).refresh_token);
        const second = await refresh(first);
        const newest = String(second.body.refresh_token);
        expect((await refresh(first)).body.error).toBe('invalid_grant');
        expect((await refresh(newest)).body.error).toBe('invalid_grant');
        expect(strict.inspectToken(String(second.body.access_token))).toMatchObject({ active: false });
      } finally {
        await strict.close();
      }
    });
  });

  describe('client_credentials (docs/epic-and-smart.md §9)', () => {
    it('is refused to non-backend clients, to secrets and to unmapped clients', async () => {
      expectError(
        await postToken(epic, { grant_type: 'client_credentials', ...secretPost() }),
        'unauthorized_client',
        /backend/,
      );
      const withSecret = epic.registerClient({ audience: 'backend', secret: 'backend-secret' });
      expectError(
        await postToken(epic, { grant_type: 'client_credentials', ...secretPost(withSecret) }),
        'unauthorized_client',
        /JWT/,
      );
      const key = await createClientKey('RS384');
      const unmapped = epic.registerClient({
        audience: 'backend',
        jwks: { keys: [key.publicJwk] },
        mappedToUser: false,
      });
      const assertion = await signClientAssertion(key, {
        clientId: unmapped.clientId,
        tokenUrl: epic.tokenUrl,
      });
      expectError(
        await postToken(epic, {
          grant_type: 'client_credentials',
          client_assertion_type: JWT_BEARER,
          client_assertion: assertion,
        }),
        'unauthorized_client',
        /not mapped/,
      );
    });
  });

  describe('response switches', () => {
    it('token_type case, expires_in, opaque tokens, duplicate scope case and offline_access echo', async () => {
      const custom = await startFakeEpic({
        tokenTypeCase: 'Bearer',
        accessTokenLifetimeSeconds: 3240,
        tokenFormat: 'opaque',
        duplicateScopeCase: true,
        echoOfflineAccess: true,
      });
      try {
        const c = custom.registerClient({
          audience: 'patient',
          scopes: ['patient/Patient.read', 'patient/Binary.read'],
        });
        const body = await obtainTokens(
          custom,
          c,
          { scope: 'openid offline_access' },
          { user: { kind: 'patient', patientId: SEED.camila } },
        );
        expect(body.token_type).toBe('Bearer');
        expect(body.expires_in).toBe(3240);
        expect(String(body.access_token).split('.')).not.toHaveLength(3);
        expect(body.scope).toBe(
          'patient/Patient.Read patient/Patient.read patient/Binary.Read patient/Binary.read openid offline_access',
        );
        expect(body.patient).toBe(SEED.camila);
      } finally {
        await custom.close();
      }
    });
  });
});
