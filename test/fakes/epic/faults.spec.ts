// Fault injection, clock and inspection switches.
import * as oidc from 'openid-client';

import { seeded, startFakeEpic, type FakeEpic } from './fake-epic';
import { SEED } from './fhir-data';
import { fhirGet, obtainCode, obtainTokens, postToken } from './spec-helpers';
import type { FakeEpicClient } from './types';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls a condition (no fixed sleep): for effects that happen after the client gave up. */
async function waitFor(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('fake Epic: faults and inspection', () => {
  let epic: FakeEpic;
  let client: FakeEpicClient;

  beforeAll(async () => {
    epic = await startFakeEpic();
    client = epic.registerClient({ persistentAccess: true });
  });
  afterAll(() => epic.close());
  afterEach(() => epic.clearFaults());

  const refresh = (token: string, init: { signal?: AbortSignal } = {}) =>
    fetch(epic.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: token,
        client_id: client.clientId,
        client_secret: client.secret!,
      }).toString(),
      ...init,
    });

  async function freshRefreshToken(c: FakeEpicClient = client): Promise<string> {
    return String((await obtainTokens(epic, c)).refresh_token);
  }

  async function smartConfig(c: FakeEpicClient): Promise<oidc.Configuration> {
    const metadata = (await (await fetch(epic.smartConfigurationUrl)).json()) as oidc.ServerMetadata;
    const config = new oidc.Configuration(metadata, c.clientId, {}, oidc.ClientSecretBasic(c.secret));
    oidc.allowInsecureRequests(config);
    return config;
  }

  describe('HTTP status faults', () => {
    it.each([500, 502])(
      '%i fails the next call with an HTML body, then the endpoint recovers',
      async (status) => {
        const token = await freshRefreshToken();
        epic.failNext('token', { status });
        const failed = await refresh(token);
        expect(failed.status).toBe(status);
        expect(failed.headers.get('content-type')).toBe('text/html');
        expect(failed.headers.get('retry-after')).toBeNull();
        expect((await refresh(token)).status).toBe(200);
      },
    );

    it('503 and 429 carry Retry-After (default 1 s, configurable, or none)', async () => {
      const token = await freshRefreshToken();
      epic.failNext('token', { status: 503 });
      epic.failNext('token', { status: 429, retryAfter: 7 });
      epic.failNext('token', { status: 503, retryAfter: null });
      const first = await refresh(token);
      expect([first.status, first.headers.get('retry-after')]).toEqual([503, '1']);
      const second = await refresh(token);
      expect([second.status, second.headers.get('retry-after')]).toEqual([429, '7']);
      const third = await refresh(token);
      expect([third.status, third.headers.get('retry-after')]).toEqual([503, null]);
      expect((await refresh(token)).status).toBe(200);
    });

    it('count fails several calls; Infinity fails until clearFaults', async () => {
      const token = await freshRefreshToken();
      epic.failNext('token', { status: 502 }, 2);
      expect((await refresh(token)).status).toBe(502);
      expect((await refresh(token)).status).toBe(502);
      expect((await refresh(token)).status).toBe(200);
      epic.failNext('token', { status: 500 }, Infinity);
      for (let i = 0; i < 3; i++) expect((await refresh(token)).status).toBe(500);
      epic.clearFaults();
      expect((await refresh(token)).status).toBe(200);
    });

    it('applies to the FHIR API, discovery, metadata and authorize as well', async () => {
      const access = String((await obtainTokens(epic, client)).access_token);
      epic.failNext('fhir', {
        status: 503,
        body: '{"resourceType":"OperationOutcome"}',
        contentType: 'application/fhir+json',
      });
      const fhir = await fhirGet(epic, `Patient/${SEED.camila}`, access);
      expect(fhir.status).toBe(503);
      expect(fhir.body.resourceType).toBe('OperationOutcome');
      epic.failNext('smart-configuration', { status: 500 });
      expect((await fetch(epic.smartConfigurationUrl)).status).toBe(500);
      epic.failNext('metadata', { status: 502 });
      expect((await fetch(epic.metadataUrl)).status).toBe(502);
      epic.failNext('authorize', { status: 500 });
      await expect(obtainCode(epic, client)).rejects.toThrow(/authorize failed/);
      expect((await fhirGet(epic, `Patient/${SEED.camila}`, access)).status).toBe(200);
    });

    it('a failing jwks_uri makes id_token validation fail in openid-client', async () => {
      const config = await smartConfig(client);
      oidc.enableNonRepudiationChecks(config); // verify the id_token signature with jwks_uri
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: client.redirectUris[0],
        scope: 'openid',
        state: 'j',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      });
      const authorized = await epic.authorizeAsUser(url);
      epic.failNext('jwks', { status: 500 });
      await expect(
        oidc.authorizationCodeGrant(config, new URL(authorized.location!), {
          pkceCodeVerifier: verifier,
          expectedState: 'j',
          idTokenExpected: true,
        }),
      ).rejects.toThrow();
      expect(epic.calls('jwks')).toBe(1);
    });
  });

  describe('delays and dropped connections', () => {
    it('answerFhirAfter answers every FHIR request late, and OAuth at once, until it is set back to 0', async () => {
      const accessToken = String((await obtainTokens(epic, client)).access_token);
      epic.answerFhirAfter(120);
      try {
        let started = Date.now();
        expect((await fhirGet(epic, `Patient/${SEED.camila}`, accessToken)).status).toBe(200);
        expect(Date.now() - started).toBeGreaterThanOrEqual(110);
        started = Date.now();
        expect((await fetch(epic.smartConfigurationUrl)).status).toBe(200);
        expect(Date.now() - started).toBeLessThan(110);
        // A range: each request draws its own time within it.
        epic.answerFhirAfter({ min: 60, max: 90 });
        const times: number[] = [];
        for (let i = 0; i < 3; i++) {
          started = Date.now();
          expect((await fhirGet(epic, `Patient/${SEED.camila}`, accessToken)).status).toBe(200);
          times.push(Date.now() - started);
        }
        for (const time of times) expect(time).toBeGreaterThanOrEqual(55);
      } finally {
        epic.answerFhirAfter(0);
      }
      const started = Date.now();
      expect((await fhirGet(epic, `Patient/${SEED.camila}`, accessToken)).status).toBe(200);
      expect(Date.now() - started).toBeLessThan(110);
    });

    it("answerFhirAfter's seeded draw repeats itself: the same seed, the same times, all within [0, 1)", () => {
      const draws = (seed: number) => Array.from({ length: 50 }, seeded(seed));
      expect(draws(1)).toEqual(draws(1));
      expect(draws(1)).not.toEqual(draws(2));
      for (const value of draws(3)) {
        expect(value).toBeGreaterThanOrEqual(0);
        expect(value).toBeLessThan(1);
      }
    });

    it('delayMs answers late, then normally', async () => {
      const token = await freshRefreshToken();
      epic.failNext('token', { delayMs: 150 });
      const started = Date.now();
      expect((await refresh(token)).status).toBe(200);
      expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    });

    it('a delay beyond the client timeout: the client gives up, the fake still processes the request', async () => {
      const rolling = epic.registerClient({ persistentAccess: true, refreshMode: 'rolling' });
      const token = await freshRefreshToken(rolling);
      epic.failNext('token', { delayMs: 300 }, { grantType: 'refresh_token' });
      await expect(
        fetch(epic.tokenUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            grant_type: 'refresh_token',
            refresh_token: token,
            client_id: rolling.clientId,
            client_secret: rolling.secret!,
          }).toString(),
          signal: AbortSignal.timeout(50),
        }),
      ).rejects.toThrow(/aborted|timeout/i);
      const entry = epic.requests('token').at(-1)!;
      await waitFor(() => entry.status !== undefined);
      expect(entry.status).toBe(200);
      // The rolling refresh happened server-side: the refresh token the client still holds is dead.
      expect(epic.inspectToken(token)).toMatchObject({ active: false });
    });

    it('openid-client times out on a delayed token endpoint', async () => {
      const config = await smartConfig(client);
      config.timeout = 0.1;
      const token = await freshRefreshToken();
      epic.failNext('token', { delayMs: 500 });
      await expect(oidc.refreshTokenGrant(config, token)).rejects.toThrow();
    });

    it('drop: the connection closes before processing, so a retry succeeds', async () => {
      const { code, verifier, redirectUri } = await obtainCode(epic, client);
      const form = {
        grant_type: 'authorization_code',
        code,
        code_verifier: verifier,
        redirect_uri: redirectUri,
      };
      epic.failNext('token', { drop: true });
      await expect(postToken(epic, form, { basic: [client.clientId, client.secret!] })).rejects.toThrow(
        /fetch failed/,
      );
      expect((await postToken(epic, form, { basic: [client.clientId, client.secret!] })).status).toBe(200);
    });

    it('drop after processing: the code is spent although the client saw no answer', async () => {
      const { code, verifier, redirectUri } = await obtainCode(epic, client);
      const form = {
        grant_type: 'authorization_code',
        code,
        code_verifier: verifier,
        redirect_uri: redirectUri,
      };
      epic.failNext('token', { drop: 'after-processing' });
      await expect(postToken(epic, form, { basic: [client.clientId, client.secret!] })).rejects.toThrow(
        /fetch failed/,
      );
      const retry = await postToken(epic, form, { basic: [client.clientId, client.secret!] });
      expect(retry.body.error).toBe('invalid_grant');
    });

    it('close() does not wait for a pending delay', async () => {
      const other = await startFakeEpic();
      other.failNext('metadata', { delayMs: 60_000 });
      const pending = fetch(other.metadataUrl).catch(() => 'closed');
      await waitFor(() => other.calls('metadata') === 1);
      const started = Date.now();
      await other.close();
      expect(await pending).toBe('closed');
      expect(Date.now() - started).toBeLessThan(2000);
    });
  });

  describe('malformed JSON and OAuth errors', () => {
    it('stallBody sends the headers and part of the body, then nothing until the client gives up', async () => {
      const access = String((await obtainTokens(epic, client)).access_token);
      epic.failNext('fhir', { stallBody: true, afterBytes: 10 });
      const abort = new AbortController();
      const res = await fetch(`${epic.fhirBase}/Patient/${SEED.camila}`, {
        headers: { Accept: 'application/fhir+json', Authorization: `Bearer ${access}` },
        signal: abort.signal,
      });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      const first = await reader.read();
      expect(Buffer.from(first.value!).toString()).toBe('{"resource');
      // Nothing more comes: the next read is still pending after a while.
      const next = reader.read();
      const settled = await Promise.race([next.then(() => 'more'), sleep(300).then(() => 'silent')]);
      expect(settled).toBe('silent');
      abort.abort();
      await next.catch(() => undefined);
      expect((await fhirGet(epic, `Patient/${SEED.camila}`, access)).status).toBe(200);
    });

    it('stallBody with thenReset sends the headers and part of the body, then resets the connection', async () => {
      const access = String((await obtainTokens(epic, client)).access_token);
      epic.failNext('fhir', { stallBody: true, afterBytes: 10, thenReset: true });
      const res = await fetch(`${epic.fhirBase}/Patient/${SEED.camila}`, {
        headers: { Accept: 'application/fhir+json', Authorization: `Bearer ${access}` },
      });
      expect(res.status).toBe(200);
      await expect(res.text()).rejects.toThrow(/terminated/);
      expect((await fhirGet(epic, `Patient/${SEED.camila}`, access)).status).toBe(200);
    });

    it('a status fault carries the headers it is given', async () => {
      const access = String((await obtainTokens(epic, client)).access_token);
      const location = `${epic.fhirBase}/BulkRequest/chosen/`;
      epic.failNext('fhir', { status: 202, body: '', headers: { 'Content-Location': location } });
      const res = await fetch(`${epic.fhirBase}/Patient/$export`, {
        headers: { Authorization: `Bearer ${access}`, Prefer: 'respond-async' },
      });
      expect(res.status).toBe(202);
      expect(res.headers.get('content-location')).toBe(location);
    });

    it('malformedJson answers 200 with truncated JSON and changes nothing', async () => {
      const token = await freshRefreshToken();
      epic.failNext('token', { malformedJson: true });
      const res = await refresh(token);
      expect(res.status).toBe(200);
      await expect(res.json()).rejects.toThrow(/JSON/);
      epic.failNext('token', { malformedJson: true });
      await expect(oidc.refreshTokenGrant(await smartConfig(client), token)).rejects.toThrow();
      expect((await refresh(token)).status).toBe(200);
    });

    it.each(['invalid_grant', 'invalid_client', 'unauthorized_client'] as const)(
      'oauthError %s answers 400 with that error, which openid-client surfaces',
      async (error) => {
        const token = await freshRefreshToken();
        epic.failNext('token', { oauthError: error, description: 'told to fail' });
        await expect(oidc.refreshTokenGrant(await smartConfig(client), token)).rejects.toMatchObject({
          error,
          error_description: 'told to fail',
          status: 400,
        });
        expect(epic.inspectToken(token)).toMatchObject({ active: true });
      },
    );

    it('oauthError is refused on endpoints that do not speak OAuth errors', () => {
      expect(() => epic.failNext('fhir', { oauthError: 'invalid_grant' })).toThrow(TypeError);
    });

    it('grantType limits a fault to one grant type', async () => {
      epic.failNext('token', { status: 500 }, { grantType: 'refresh_token' });
      const tokens = await obtainTokens(epic, client); // the code exchange is not affected
      expect((await refresh(String(tokens.refresh_token))).status).toBe(500);
      expect((await refresh(String(tokens.refresh_token))).status).toBe(200);
    });

    it('rejectRefresh answers invalid_grant to the next refreshes only', async () => {
      epic.rejectRefresh(2);
      const tokens = await obtainTokens(epic, client);
      for (let i = 0; i < 2; i++) {
        const res = await refresh(String(tokens.refresh_token));
        expect([res.status, ((await res.json()) as { error: string }).error]).toEqual([400, 'invalid_grant']);
      }
      expect((await refresh(String(tokens.refresh_token))).status).toBe(200);
    });
  });

  describe('clock, expiry and the request log', () => {
    it('expireAccessTokens, then exactly one refresh gets a working token', async () => {
      const tokens = await obtainTokens(epic, client);
      epic.expireAccessTokens();
      const stale = await fhirGet(epic, `Patient/${SEED.camila}`, String(tokens.access_token));
      expect(stale.headers.get('www-authenticate')).toMatch(/invalid_token/);
      epic.clearLog();
      const refreshed = (await (await refresh(String(tokens.refresh_token))).json()) as {
        access_token: string;
      };
      expect((await fhirGet(epic, `Patient/${SEED.camila}`, refreshed.access_token)).status).toBe(200);
      expect(epic.calls('token', { grantType: 'refresh_token' })).toBe(1);
      expect(epic.calls('token', { grantType: 'authorization_code' })).toBe(0);
      expect(epic.calls('fhir')).toBe(1);
    });

    it('advanceClock expires access tokens after expires_in without waiting', async () => {
      const { access_token: token } = await obtainTokens(epic, client);
      expect(epic.inspectToken(String(token))).toMatchObject({ kind: 'access', active: true });
      epic.advanceClock(3600 * 1000);
      expect(epic.inspectToken(String(token))).toMatchObject({ kind: 'access', active: false });
    });

    it('logs each request with what the app sent and what the fake answered', async () => {
      epic.clearLog();
      const token = await freshRefreshToken();
      epic.failNext('token', { status: 503 });
      await refresh(token);
      await postToken(
        epic,
        { grant_type: 'refresh_token', refresh_token: token },
        { basic: [client.clientId, 'wrong'] },
      );
      const [authorize, exchange, faulted, rejected] = epic.requests();
      expect(authorize).toMatchObject({
        endpoint: 'authorize',
        method: 'GET',
        status: 302,
        clientId: client.clientId,
      });
      expect(authorize.query.code_challenge_method).toBe('S256');
      expect(exchange).toMatchObject({ endpoint: 'token', grantType: 'authorization_code', status: 200 });
      expect(exchange.responseBody).toHaveProperty('access_token');
      expect(faulted).toMatchObject({ fault: { status: 503 }, status: 503, form: { refresh_token: token } });
      expect(rejected).toMatchObject({
        status: 400,
        rejection: 'wrong client secret',
        clientId: client.clientId,
      });
      expect(rejected.headers.authorization).toMatch(/^Basic /);
      expect(epic.calls('token')).toBe(3);
    });
  });
});
