import { SmartDiscoveryService } from 'src/epic-auth/smart-discovery.service';
import { Role } from 'src/users/user.types';

import { signIn, TestFactory } from 'test/factories';
import { authorizeAtFake, CALLBACK, registeredOrganization, SignedIn } from 'test/factories/epic-connection';
import { FakeEpic, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

describe('GET /fhir/epic-callback (organization connection, completion)', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let factory: TestFactory;

  beforeAll(async () => {
    [t, epic] = await Promise.all([
      createTestApp({ env: { EPIC_HTTP_TIMEOUT_MS: '1000' } }),
      startFakeEpic(),
    ]);
    factory = new TestFactory(t);
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });
  afterEach(() => epic.clearFaults());

  const setup = (options: { persistentAccess?: boolean } = {}) => registeredOrganization(t, epic, options);
  const authorize = (admin: SignedIn, orgId: string, consent?: 'deny') =>
    authorizeAtFake(epic, admin, orgId, consent);

  const org = async (id: string) =>
    (
      await t.dataSource.query<
        { is_connected: boolean; token_expiry: Date | null; last_error: string | null }[]
      >(
        `SELECT COALESCE(s.is_connected, false) AS is_connected, s.token_expiry, s.last_error
          FROM organization o LEFT JOIN organization_connection s ON s.organization_id = o.id WHERE o.id = $1`,
        [id],
      )
    )[0];
  const credentials = (orgId: string) =>
    t.dataSource.query<
      { access_token_enc: string; refresh_token_enc: string | null; scopes: string; fhir_user: string }[]
    >('SELECT * FROM epic_credential WHERE organization_id = $1', [orgId]);

  it('connects: stores encrypted tokens, marks the organization connected, audits, and says so', async () => {
    const { orgId, admin } = await setup();
    const callback = await authorize(admin, orgId);
    const res = await admin.agent.get(callback).expect(303);
    expect(res.headers.location).toBe(`/admin/organizations/${orgId}?connected=1`);
    const page = await admin.agent.get(res.headers.location).expect(200);
    expect(page.text).toContain('Connected to Epic.');

    const [cred] = await credentials(orgId);
    const issued = epic.requests('token').at(-1)!;
    const accessToken = (issued.responseBody as Record<string, string>).access_token;
    const refreshToken = (issued.responseBody as Record<string, string>).refresh_token;
    expect(cred.access_token_enc).toMatch(/^v1\.test1\./);
    expect(cred.access_token_enc).not.toContain(accessToken);
    expect(cred.refresh_token_enc).toMatch(/^v1\.test1\./);
    expect(cred.refresh_token_enc).not.toContain(refreshToken);
    expect(cred.scopes).toContain('openid');
    expect(cred.fhir_user).toMatch(/Practitioner\//);

    const state = await org(orgId);
    expect(state.is_connected).toBe(true);
    expect(state.last_error).toBeNull();
    expect(Math.abs(state.token_expiry!.getTime() - (Date.now() + 3600_000))).toBeLessThan(60_000);

    // PKCE and client_secret_basic reached Epic; no page or JSON shows a token.
    expect(issued.form?.code_verifier).toBeTruthy();
    expect(issued.headers.authorization).toMatch(/^Basic /);
    for (const path of [
      `/api/organizations/${orgId}`,
      `/api/organizations/${orgId}/audit-events`,
      `/admin/organizations/${orgId}`,
    ]) {
      const body = (await admin.agent.get(path)).text;
      expect(body).not.toContain(accessToken);
      expect(body).not.toContain(refreshToken);
    }
  });

  it('refuses a replayed callback (the state is single-use) and stores nothing more', async () => {
    const { orgId, admin } = await setup();
    const callback = await authorize(admin, orgId);
    await admin.agent.get(callback).expect(303);
    const replay = await admin.agent.get(callback).expect(400);
    expect(replay.text).toContain('unknown or was already used');
    expect(await credentials(orgId)).toHaveLength(1);
  });

  it('refuses a callback without state, or with an unknown one', async () => {
    const { admin } = await setup();
    expect((await admin.agent.get('/fhir/epic-callback?code=x').expect(400)).text).toContain('has no state');
    await admin.agent.get('/fhir/epic-callback?code=x&state=forged').expect(400);
  });

  it('refuses a state from another session, and an expired one', async () => {
    const { orgId, admin } = await setup();
    const callback = await authorize(admin, orgId);
    const other = await signIn(t, await factory.user(Role.OrgAdmin, orgId));
    const res = await other.agent.get(callback).expect(400);
    expect(res.text).toContain('started in another browser');
    expect(res.text).toContain('use Connect on its registration page');

    // The same browser, but another admin signed in since (a shared workstation): still refused.
    const shared = await authorize(admin, orgId);
    await admin.agent.post('/logout').type('form').send({ _csrf: admin.csrf });
    const second = await factory.user(Role.OrgAdmin, orgId);
    const login = await admin.agent.get('/login').expect(200);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(login.text)![1];
    await admin.agent
      .post('/login')
      .type('form')
      .send({ _csrf: csrf, email: second.email, password: second.password })
      .expect(303);
    const otherSession = await admin.agent.get(shared).expect(400);
    expect(otherSession.text).toContain('another browser session');

    const late = await authorize(admin, orgId);
    await t.dataSource.query(
      `UPDATE pending_authorization SET expires_at = now() - interval '1 second' WHERE organization_id = $1 AND used_at IS NULL`,
      [orgId],
    );
    expect((await admin.agent.get(late).expect(400)).text).toContain('more than 10 minutes');
    expect(await credentials(orgId)).toHaveLength(0);
  });

  it('explains access_denied to the admin who tried, and audits it', async () => {
    const { orgId, admin } = await setup();
    const callback = await authorize(admin, orgId, 'deny');
    const res = await admin.agent.get(callback).expect(400);
    expect(res.text).toContain('Epic did not grant access (access_denied)');
    expect(res.text).toContain(`/admin/organizations/${orgId}`);
    expect(await org(orgId)).toMatchObject({ is_connected: false, last_error: null });
    expect(await credentials(orgId)).toHaveLength(0);
    const [event] = await t.dataSource.query<{ outcome: string; detail: { code: string } }[]>(
      `SELECT outcome, detail FROM audit_event WHERE organization_id = $1 AND action = 'epic.connect'`,
      [orgId],
    );
    expect(event).toMatchObject({ outcome: 'failure', detail: { error: 'access_denied' } });
  });

  describe('a failed reconnect leaves a working connection as it was', () => {
    const connected = async () => {
      const { orgId, admin } = await setup();
      await admin.agent.get(await authorize(admin, orgId)).expect(303);
      const before = { org: await org(orgId), credentials: await credentials(orgId) };
      expect(before.org.is_connected).toBe(true);
      return { orgId, admin, before };
    };
    const unchanged = async (orgId: string, before: Awaited<ReturnType<typeof connected>>['before']) => {
      expect(await org(orgId)).toEqual(before.org);
      expect(await credentials(orgId)).toEqual(before.credentials);
    };

    it('declined at Epic: 400 with the cause, nothing changed', async () => {
      const { orgId, admin, before } = await connected();
      const res = await admin.agent.get(await authorize(admin, orgId, 'deny')).expect(400);
      expect(res.text).toContain('access_denied');
      await unchanged(orgId, before);
    });

    it('a callback without a code: 400 that says so, not 502, nothing changed', async () => {
      const { orgId, admin, before } = await connected();
      const callback = new URL(await authorize(admin, orgId), CALLBACK);
      callback.searchParams.delete('code');
      const res = await admin.agent.get(callback.pathname + callback.search).expect(400);
      expect(res.text).toContain('no authorization code');
      await unchanged(orgId, before);
    });

    it('a callback naming another server in iss (RFC 9207): 400, nothing changed, the code unspent', async () => {
      const { orgId, admin, before } = await connected();
      const callback = new URL(await authorize(admin, orgId), CALLBACK);
      callback.searchParams.set('iss', 'https://attacker.example/oauth2');
      const tokenCalls = epic.calls('token');
      const res = await admin.agent.get(callback.pathname + callback.search).expect(400);
      expect(res.text).toContain('names another authorization server');
      expect(epic.calls('token')).toBe(tokenCalls);
      await unchanged(orgId, before);
    });

    it('a token endpoint failure: 502, nothing changed', async () => {
      const { orgId, admin, before } = await connected();
      const callback = await authorize(admin, orgId);
      epic.failNext('token', { status: 500 });
      await admin.agent.get(callback).expect(502);
      await unchanged(orgId, before);
    });
  });

  it.each([
    [
      'invalid_client',
      { oauthError: 'invalid_client' as const },
      'Epic rejected the client credentials (invalid_client)',
    ],
    ['a 500', { status: 500 }, "Epic's token endpoint answered HTTP 500"],
    ['a timeout', { delayMs: 2500 }, "Epic's token endpoint did not answer in time"],
  ])(
    'turns %s from the token endpoint into an actionable last error, with nothing stored',
    async (_l, fault, message) => {
      const { orgId, admin } = await setup();
      const callback = await authorize(admin, orgId);
      // invalid_client twice: the client's secret has two Basic encodings, and both are refused.
      epic.failNext('token', fault, 'oauthError' in fault ? 2 : 1);
      const res = await admin.agent.get(callback);
      expect(res.status).toBe(502);
      expect(res.text).toContain(message.replace(/'/g, '&#x27;'));
      expect(await org(orgId)).toMatchObject({ is_connected: false, last_error: null });
      expect(await credentials(orgId)).toHaveLength(0);
      const [event] = await t.dataSource.query<{ outcome: string }[]>(
        `SELECT outcome FROM audit_event WHERE organization_id = $1 AND action = 'epic.connect'`,
        [orgId],
      );
      expect(event.outcome).toBe('failure');
    },
  );

  it('completes a sign-in, id_token checked, when the well-known document failed and /metadata was used', async () => {
    const { orgId, admin } = await setup();
    t.app.get(SmartDiscoveryService).forget(epic.fhirBase);
    epic.failNext('smart-configuration', { status: 503 });
    await admin.agent.get(await authorize(admin, orgId)).expect(303);
    const [cred] = await credentials(orgId);
    expect(cred.fhir_user).toMatch(/Practitioner\//); // from the verified id_token
  });

  it('stores a connection without a refresh token when persistent access is off', async () => {
    const { orgId, admin } = await setup({ persistentAccess: false });
    await admin.agent.get(await authorize(admin, orgId)).expect(303);
    const [cred] = await credentials(orgId);
    expect(cred.refresh_token_enc).toBeNull();
  });

  it('clears the stored tokens, audited, when the client id or base URL changes', async () => {
    const { orgId, admin } = await setup();
    await admin.agent.get(await authorize(admin, orgId)).expect(303);
    expect(await credentials(orgId)).toHaveLength(1);
    const other = epic.registerClient({ redirectUris: [CALLBACK] });
    await admin.agent
      .put(`/api/organizations/${orgId}/epic-client`)
      .set('x-csrf-token', admin.csrf)
      .send({ clientId: other.clientId, environment: 'sandbox', fhirBaseUrl: epic.fhirBase })
      .expect(200);
    expect(await credentials(orgId)).toHaveLength(0);
    expect(await org(orgId)).toMatchObject({ is_connected: false, token_expiry: null });
    const events = await t.dataSource.query<{ action: string }[]>(
      `SELECT action FROM audit_event WHERE organization_id = $1 ORDER BY occurred_at DESC LIMIT 2`,
      [orgId],
    );
    expect(events.map((e) => e.action)).toContain('epic.tokens-cleared');
  });

  it.each(['signature', 'audience', 'nonce'] as const)(
    'refuses an id_token with a bad %s, storing nothing',
    async (kind) => {
      const { orgId, admin } = await setup();
      const callback = await authorize(admin, orgId);
      epic.tamperNextIdToken(kind);
      const res = await admin.agent.get(callback).expect(502);
      // openid-client rejects a wrong audience or nonce at the exchange; jose rejects the signature.
      expect(res.text).toContain(
        'The identity token from Epic failed verification; the connection was not saved.',
      );
      expect(await credentials(orgId)).toHaveLength(0);
      expect(await org(orgId)).toMatchObject({ is_connected: false, last_error: null });
    },
  );
});
