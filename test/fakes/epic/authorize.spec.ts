// Every rejection of the authorize endpoint, and the user/consent switches.
import { startFakeEpic, type FakeEpic } from './fake-epic';
import { SEED } from './fhir-data';
import { authorizeUrl, pkce, postToken } from './spec-helpers';
import type { FakeEpicClient } from './types';

describe('fake Epic: authorize endpoint', () => {
  let epic: FakeEpic;
  let client: FakeEpicClient;

  beforeAll(async () => {
    epic = await startFakeEpic();
    client = epic.registerClient({
      redirectUris: ['http://localhost:3000/fhir/epic-callback', 'https://app.example/cb?tenant=a'],
    });
  });
  afterAll(() => epic.close());
  afterEach(() => {
    epic.setConsent('approve');
    epic.setUser(undefined);
  });

  const authorize = (params: Record<string, string | undefined>, c: FakeEpicClient = client) =>
    epic.authorizeAsUser(authorizeUrl(epic, c, params));

  it('redirects with a code and the state, keeping the redirect URI query', async () => {
    const result = await authorize({ redirect_uri: 'https://app.example/cb?tenant=a' });
    expect(result.status).toBe(302);
    const location = new URL(result.location!);
    expect(location.searchParams.get('tenant')).toBe('a');
    expect(result.code).toEqual(expect.any(String));
    expect(result.state).toBe('state-123');
  });

  describe('errors shown as a page, without a redirect', () => {
    it.each([
      ['client_id is missing', { client_id: undefined }, /client_id is missing/],
      ['client_id is unknown', { client_id: 'nobody' }, /unknown client_id/],
      ['redirect_uri is missing', { redirect_uri: undefined }, /redirect_uri is missing/],
      [
        'redirect_uri differs in case',
        { redirect_uri: 'http://localhost:3000/FHIR/epic-callback' },
        /not registered/,
      ],
      [
        'redirect_uri differs in path',
        { redirect_uri: 'http://localhost:3000/fhir/epic-callback/' },
        /not registered/,
      ],
      ['redirect_uri is another site', { redirect_uri: 'https://evil.example/cb' }, /not registered/],
    ])('%s', async (_name, params, reason) => {
      const result = await authorize(params);
      expect(result.status).toBe(400);
      expect(result.location).toBeUndefined();
      expect(result.body).toContain('Something went wrong trying to authorize the client.');
      expect(epic.requests('authorize').at(-1)!.rejection).toMatch(reason);
    });

    it('POST with a JSON body', async () => {
      const res = await fetch(epic.authorizeUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_id: client.clientId }),
        redirect: 'manual',
      });
      expect(res.status).toBe(400);
      expect(res.headers.get('location')).toBeNull();
    });
  });

  describe('errors sent back to the redirect URI with error, error_description and state', () => {
    const { challenge } = pkce();
    it.each([
      ['response_type is not code', { response_type: 'token' }, 'unsupported_response_type'],
      ['response_type is missing', { response_type: undefined }, 'unsupported_response_type'],
      ['scope is missing (sandbox)', { scope: undefined }, 'invalid_scope'],
      [
        'aud is another server',
        { aud: 'https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4' },
        'invalid_request',
      ],
      ['aud has a trailing slash', { aud: 'TRAILING' }, 'invalid_request'],
      [
        'aud is missing with launch/patient',
        { aud: undefined, scope: 'openid launch/patient' },
        'invalid_request',
      ],
      ['PKCE plain', { code_challenge: challenge, code_challenge_method: 'plain' }, 'invalid_request'],
      ['PKCE challenge without a method (plain)', { code_challenge: challenge }, 'invalid_request'],
      ['PKCE method without a challenge', { code_challenge_method: 'S256' }, 'invalid_request'],
      [
        'PKCE challenge malformed',
        { code_challenge: 'short', code_challenge_method: 'S256' },
        'invalid_request',
      ],
      ['launch scope in a standalone request', { scope: 'launch openid' }, 'invalid_scope'],
      ['unknown launch token', { scope: 'launch openid', launch: 'not-a-launch' }, 'invalid_request'],
    ])('%s', async (_name, params, error) => {
      const p: Record<string, string | undefined> = { ...params };
      if (p.aud === 'TRAILING') p.aud = `${epic.fhirBase}/`; // the base is only known once the fake runs
      const result = await authorize(p);
      expect(result.status).toBe(302);
      expect(result.error).toBe(error);
      expect(result.errorDescription).toEqual(expect.any(String));
      expect(result.state).toBe('state-123');
      expect(result.code).toBeUndefined();
      expect(result.location!.startsWith('http://localhost:3000/fhir/epic-callback?')).toBe(true);
    });

    it('a repeated parameter', async () => {
      const result = await epic.authorizeAsUser(`${authorizeUrl(epic, client)}&scope=openid`);
      expect(result.error).toBe('invalid_request');
      expect(result.errorDescription).toMatch(/scope is repeated/);
    });

    it('a backend client', async () => {
      const backend = epic.registerClient({ audience: 'backend' });
      expect((await authorize({}, backend)).error).toBe('unauthorized_client');
    });

    it('POST for a standalone launch (POST is for EHR launches only)', async () => {
      const result = await epic.authorizeAsUser(authorizeUrl(epic, client), { method: 'POST' });
      expect(result.error).toBe('invalid_request');
      expect(result.errorDescription).toMatch(/EHR launches only/);
    });

    it('the user denies consent (setConsent and per call)', async () => {
      epic.setConsent('deny');
      expect((await authorize({})).error).toBe('access_denied');
      epic.setConsent('approve');
      expect((await epic.authorizeAsUser(authorizeUrl(epic, client), { consent: 'deny' })).error).toBe(
        'access_denied',
      );
      expect((await authorize({})).code).toEqual(expect.any(String));
    });

    it('a MyChart patient logging in to a provider app', async () => {
      epic.setUser({ kind: 'patient', patientId: SEED.camila });
      expect((await authorize({})).error).toBe('access_denied');
    });
  });

  describe('switches', () => {
    it('aud is optional without launch context, unless audRequired is always', async () => {
      expect((await authorize({ aud: undefined })).code).toEqual(expect.any(String));
      const strict = await startFakeEpic({ audRequired: 'always' });
      try {
        const c = strict.registerClient();
        expect((await strict.authorizeAsUser(authorizeUrl(strict, c, { aud: undefined }))).error).toBe(
          'invalid_request',
        );
      } finally {
        await strict.close();
      }
    });

    it('requirePkce rejects a request without code_challenge; requireScope: false accepts no scope', async () => {
      expect((await authorize({})).code).toEqual(expect.any(String)); // PKCE optional by default
      const strict = await startFakeEpic({ requirePkce: true, requireScope: false });
      try {
        const c = strict.registerClient();
        const noPkce = await strict.authorizeAsUser(authorizeUrl(strict, c));
        expect(noPkce.error).toBe('invalid_request');
        expect(noPkce.errorDescription).toMatch(/PKCE/);
        const { challenge } = pkce();
        const noScope = await strict.authorizeAsUser(
          authorizeUrl(strict, c, {
            scope: undefined,
            code_challenge: challenge,
            code_challenge_method: 'S256',
          }),
        );
        expect(noScope.code).toEqual(expect.any(String));
      } finally {
        await strict.close();
      }
    });

    it('consentPage shows a sign-in page, then redirects on Allow and denies on Deny', async () => {
      const interactive = await startFakeEpic({ consentPage: true });
      try {
        const c = interactive.registerClient({ audience: 'patient' });
        const page = async () => {
          const res = await fetch(authorizeUrl(interactive, c), { redirect: 'manual' });
          const html = await res.text();
          expect(res.status).toBe(200);
          expect(html).toContain(`value="patient:${SEED.derrick}"`);
          return /name="request" value="([^"]+)"/.exec(html)![1];
        };
        const decide = (request: string, decision: string) =>
          fetch(`${interactive.authorizeUrl}/decision`, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ request, user: `patient:${SEED.derrick}`, decision }).toString(),
            redirect: 'manual',
          });
        const request = await page();
        const allowed = await decide(request, 'approve');
        expect(allowed.status).toBe(302);
        expect(new URL(allowed.headers.get('location')!).searchParams.get('code')).toEqual(
          expect.any(String),
        );
        expect((await decide(request, 'approve')).status).toBe(400); // answered once only
        const denied = await decide(await page(), 'deny');
        expect(new URL(denied.headers.get('location')!).searchParams.get('error')).toBe('access_denied');
      } finally {
        await interactive.close();
      }
    });
  });

  describe('EHR launch tokens', () => {
    const ehr = (launch: string, c: FakeEpicClient = client) =>
      epic.authorizeAsUser(authorizeUrl(epic, c, { scope: 'launch openid fhirUser', launch }), {
        method: 'POST',
      });

    it('are accepted once, by GET or POST', async () => {
      const { launch } = epic.launchContext({ patient: SEED.camila });
      expect(
        (await epic.authorizeAsUser(authorizeUrl(epic, client, { scope: 'launch openid', launch }))).code,
      ).toEqual(expect.any(String));
      const again = await ehr(launch);
      expect(again.error).toBe('invalid_request');
      expect(again.errorDescription).toMatch(/invalid_launch_token.*already used/);
    });

    it('without the launch scope are spent, and the user logs in with no EHR context', async () => {
      const { launch } = epic.launchContext({ patient: SEED.camila });
      const result = await epic.authorizeAsUser(authorizeUrl(epic, client, { scope: 'openid', launch }));
      const tokens = await postToken(epic, {
        grant_type: 'authorization_code',
        code: result.code,
        redirect_uri: client.redirectUris[0],
        client_id: client.clientId,
        client_secret: client.secret,
      });
      expect(tokens.status).toBe(200);
      expect(tokens.body.patient).toBeUndefined();
      expect(tokens.body.need_patient_banner).toBeUndefined();
      expect((await ehr(launch)).errorDescription).toMatch(/already used/);
    });

    it('expire (fake clock)', async () => {
      const { launch } = epic.launchContext({ patient: SEED.camila });
      epic.advanceClock(301_000);
      expect((await ehr(launch)).errorDescription).toMatch(/invalid_launch_token.*expired/);
    });

    it('are bound to the client they were issued for', async () => {
      const other = epic.registerClient();
      const { launch } = epic.launchContext({ patient: SEED.camila, clientId: other.clientId });
      expect((await ehr(launch)).errorDescription).toMatch(/invalid_launch_token.*another client/);
      expect((await ehr(launch, other)).code).toEqual(expect.any(String));
    });

    it('ehrLaunchUrl gives the launch URL with iss and launch', () => {
      const url = new URL(epic.ehrLaunchUrl('https://app.example/launch', { patient: SEED.camila }));
      expect(url.origin + url.pathname).toBe('https://app.example/launch');
      expect(url.searchParams.get('iss')).toBe(epic.fhirBase);
      expect(url.searchParams.get('launch')).toEqual(expect.any(String));
    });
  });
});
