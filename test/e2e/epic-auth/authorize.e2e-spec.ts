import { createHash } from 'node:crypto';

import { Role } from 'src/users/user.types';

import { signIn, TestFactory } from 'test/factories';
import { CALLBACK, registeredOrganization } from 'test/factories/epic-connection';
import { FakeEpic, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

describe('GET /fhir/epic-authorize (organization connection, start)', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let factory: TestFactory;

  beforeAll(async () => {
    [t, epic] = await Promise.all([
      createTestApp(),
      startFakeEpic({ requirePkce: true, audRequired: 'always' }),
    ]);
    factory = new TestFactory(t);
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });

  // An organization registered at the fake through the API (saved by its org admin).
  const registeredOrg = () => registeredOrganization(t, epic, { scopes: 'user/Patient.read' });

  it('redirects an org admin to Epic with every parameter, and Epic accepts the request', async () => {
    const { orgId, clientId } = await registeredOrg();
    const admin = await signIn(t, await factory.user(Role.OrgAdmin, orgId));
    const res = await admin.agent.get('/fhir/epic-authorize').query({ org: orgId }).expect(303);
    const location = new URL(res.headers.location);
    expect(location.origin + location.pathname).toBe(epic.authorizeUrl);
    const p = Object.fromEntries(location.searchParams);
    expect(p).toMatchObject({
      response_type: 'code',
      client_id: clientId,
      redirect_uri: CALLBACK,
      scope: 'openid fhirUser offline_access user/Patient.read',
      aud: epic.fhirBase,
      code_challenge_method: 'S256',
    });
    expect(p.state.length).toBeGreaterThanOrEqual(43); // ≥ 256 bits, base64url
    expect(p.code_challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(p.nonce).toBeTruthy();

    const [pending] = await t.dataSource.query<
      {
        state_hash: string;
        code_verifier_enc: string;
        session_id: string;
        expires_at: Date;
        created_at: Date;
      }[]
    >('SELECT * FROM pending_authorization WHERE organization_id = $1', [orgId]);
    expect(pending.state_hash).toBe(createHash('sha256').update(p.state).digest('hex'));
    expect(pending.code_verifier_enc).toMatch(/^v1\.test1\./);
    expect(pending.expires_at.getTime() - pending.created_at.getTime()).toBe(10 * 60_000);

    const authorized = await epic.authorizeAsUser(location.toString());
    expect(authorized.error).toBeUndefined();
    expect(authorized.location!.startsWith(`${CALLBACK}?`)).toBe(true);
    expect(authorized.state).toBe(p.state);
    expect(authorized.code).toBeTruthy();
  });

  it('sweeps authorizations abandoned more than a day ago when a new one starts', async () => {
    const { orgId } = await registeredOrg();
    const root = await signIn(t, await factory.user(Role.RootAdmin, null));
    await root.agent.get(`/fhir/epic-authorize?org=${orgId}`).expect(303);
    await t.dataSource.query(
      `UPDATE pending_authorization SET expires_at = now() - interval '25 hours' WHERE organization_id = $1`,
      [orgId],
    );
    await root.agent.get(`/fhir/epic-authorize?org=${orgId}`).expect(303);
    const rows = await t.dataSource.query<unknown[]>(
      'SELECT 1 FROM pending_authorization WHERE organization_id = $1',
      [orgId],
    );
    expect(rows).toHaveLength(1);
  });

  it('uses a new state, verifier and nonce every time', async () => {
    const { orgId } = await registeredOrg();
    const root = await signIn(t, await factory.user(Role.RootAdmin, null));
    const a = new URL((await root.agent.get(`/fhir/epic-authorize?org=${orgId}`)).headers.location);
    const b = new URL((await root.agent.get(`/fhir/epic-authorize?org=${orgId}`)).headers.location);
    for (const key of ['state', 'code_challenge', 'nonce']) {
      expect(a.searchParams.get(key)).not.toBe(b.searchParams.get(key));
    }
  });

  it('explains, without redirecting, when no Epic client is registered', async () => {
    const org = await factory.organization();
    const admin = await signIn(t, await factory.user(Role.OrgAdmin, org.id));
    const res = await admin.agent.get('/fhir/epic-authorize').query({ org: org.id }).expect(409);
    expect(res.headers.location).toBeUndefined();
    expect(res.text).toContain('Register the Epic client ID and FHIR base URL before connecting.');
  });

  it('explains a discovery failure on a page, audits it, and stores nothing', async () => {
    const { orgId } = await registeredOrg();
    const admin = await signIn(t, await factory.user(Role.OrgAdmin, orgId));
    epic.failNext('smart-configuration', { status: 500 });
    epic.failNext('metadata', { status: 500 });
    // A fresh client id: discovery is cached per (base, client id), so this one is not cached.
    const res = await admin.agent.get('/fhir/epic-authorize').query({ org: orgId });
    epic.clearFaults();
    expect(res.status).toBe(502);
    expect(res.headers.location).toBeUndefined();
    expect(res.text).toContain('Could not discover the SMART endpoints');
    const pending = await t.dataSource.query<unknown[]>(
      'SELECT 1 FROM pending_authorization WHERE organization_id = $1',
      [orgId],
    );
    expect(pending).toHaveLength(0);
    const [event] = await t.dataSource.query<{ outcome: string; detail: { reason: string } }[]>(
      `SELECT outcome, detail FROM audit_event WHERE organization_id = $1 AND action = 'epic.authorize'`,
      [orgId],
    );
    expect(event).toEqual({ outcome: 'failure', detail: { reason: 'DISCOVERY_FAILED' } });
  });

  it('hides another organization (404) and refuses providers and patients (403)', async () => {
    const { orgId } = await registeredOrg();
    const other = await factory.organization();
    const otherAdmin = await signIn(t, await factory.user(Role.OrgAdmin, other.id));
    await otherAdmin.agent.get('/fhir/epic-authorize').query({ org: orgId }).expect(404);
    const provider = await signIn(t, await factory.user(Role.Provider, orgId));
    await provider.agent.get('/fhir/epic-authorize').query({ org: orgId }).expect(403);
    await t
      .http()
      .get('/fhir/epic-authorize')
      .query({ org: orgId })
      .expect(303)
      .expect('Location', /^\/login/);
  });

  it.each([
    ['v1', 'user/Patient.rs user/Observation.read', 'user/Patient.read user/Observation.read'],
    ['v2', 'user/Patient.read user/Observation.rs', 'user/Patient.rs user/Observation.rs'],
  ] as const)(
    'asks for the data scopes in the organization syntax (%s)',
    async (scopeSyntax, scopes, expected) => {
      const { orgId, admin } = await registeredOrganization(t, epic, { scopes, scopeSyntax });
      const start = await admin.agent.get('/fhir/epic-authorize').query({ org: orgId }).expect(303);
      const scope = new URL(start.headers.location).searchParams.get('scope');
      expect(scope).toBe(`openid fhirUser offline_access ${expected}`);
    },
  );
});
