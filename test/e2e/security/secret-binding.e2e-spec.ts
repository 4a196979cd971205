import { SmartDiscoveryService } from 'src/epic-auth/smart-discovery.service';

import { registeredOrganization, SignedIn } from 'test/factories/epic-connection';
import { testSecret } from 'test/factories/secrets';
import { FakeEpic, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

/**
 * An org admin must not be able to send the organization's stored client secret to a server of
 * their choosing: the secret is bound to the client ID, environment and FHIR base it was typed for,
 * and to the origin of the token endpoint it was first sent to.
 */
describe('the client secret is bound to where it was entered', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let attacker: FakeEpic;

  beforeAll(async () => {
    [t, epic, attacker] = await Promise.all([
      createTestApp(),
      startFakeEpic({ revocationEndpoint: true }),
      startFakeEpic({ flavor: 'smart', basicAuthDecoding: 'raw', revocationEndpoint: true }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([epic.close(), attacker.close()]);
    await t.close();
  });

  const setup = async () => {
    const secret = testSecret('bound');
    const registered = await registeredOrganization(t, epic, { secret });
    return { ...registered, secret };
  };

  const register = (admin: SignedIn, orgId: string, body: Record<string, string>) =>
    admin.agent
      .put(`/api/organizations/${orgId}/epic-client`)
      .set('x-csrf-token', admin.csrf)
      .send({ environment: 'sandbox', ...body });

  const testConnection = async (admin: SignedIn, orgId: string) =>
    (
      await admin.agent
        .post('/fhir/test-epic-connection')
        .set('x-csrf-token', admin.csrf)
        .send({ org: orgId })
        .expect(200)
    ).body as { configuration: { steps: { name: string; ok: boolean; message: string }[] } };

  /** Everything a server received, as text: headers (Basic credentials included) and forms. */
  const received = (server: FakeEpic) =>
    server
      .requests()
      .map((r) => {
        const basic = /^Basic (.+)$/i.exec(String(r.headers.authorization ?? ''))?.[1];
        return JSON.stringify({ ...r, basic: basic ? Buffer.from(basic, 'base64').toString() : null });
      })
      .join('\n');
  const leaked = (server: FakeEpic, secret: string) =>
    received(server).includes(secret) || received(server).includes(encodeURIComponent(secret));

  it('moving the FHIR base to another server deletes the secret, says so, and the new server never sees it', async () => {
    const { orgId, admin, clientId, secret } = await setup();
    const moved = await register(admin, orgId, { clientId, fhirBaseUrl: attacker.fhirBase }).expect(200);
    expect(moved.body).toMatchObject({ hasClientSecret: false, secretCleared: true });

    await testConnection(admin, orgId);
    await admin.agent.get('/fhir/epic-authorize').query({ org: orgId }).expect(303);
    expect(attacker.calls('token')).toBeGreaterThan(0); // it was asked, without the secret
    expect(leaked(attacker, secret)).toBe(false);
    const [event] = await t.dataSource.query<{ detail: { secretCleared: boolean } }[]>(
      `SELECT detail FROM audit_event WHERE organization_id = $1 AND action = 'epic-client.registered'
        ORDER BY occurred_at DESC LIMIT 1`,
      [orgId],
    );
    expect(event.detail.secretCleared).toBe(true);
  });

  it.each([
    ['the client ID', { clientId: 'another-client' }],
    ['the environment', { environment: 'production' }],
  ])('changing %s without typing the secret again deletes it too', async (_label, change) => {
    const { orgId, admin, clientId } = await setup();
    const res = await register(admin, orgId, { clientId, fhirBaseUrl: epic.fhirBase, ...change }).expect(200);
    expect(res.body).toMatchObject({ hasClientSecret: false, secretCleared: true });
  });

  it('keeps the secret when only other fields change, and when a new one is typed', async () => {
    const { orgId, admin, clientId } = await setup();
    const same = await register(admin, orgId, {
      clientId,
      fhirBaseUrl: epic.fhirBase,
      scopes: 'user/Patient.read',
    }).expect(200);
    expect(same.body).toMatchObject({ hasClientSecret: true, secretCleared: false });
    const retyped = await register(admin, orgId, {
      clientId: 'another-client',
      fhirBaseUrl: epic.fhirBase,
      clientSecret: testSecret('new'),
    }).expect(200);
    expect(retyped.body).toMatchObject({ hasClientSecret: true, secretCleared: false });
  });

  it('the registration page says the secret was deleted', async () => {
    const { orgId, admin, clientId } = await setup();
    const saved = await admin.agent
      .post(`/admin/epic/registration?org=${orgId}`)
      .type('form')
      // A base no other organization uses (sharing one is root's call).
      .send({
        _csrf: admin.csrf,
        clientId,
        environment: 'sandbox',
        fhirBaseUrl: `${attacker.origin}/other/fhir`,
      })
      .expect(303);
    const page = await admin.agent.get(saved.headers.location).expect(200);
    expect(page.text).toContain('The saved client secret was deleted');
    expect(page.text).toContain('not set');
  });

  it('discovery that names a token endpoint on another origin does not get the secret', async () => {
    const { orgId, admin, secret } = await setup();
    // First use binds the secret to the real token endpoint's origin.
    const first = await testConnection(admin, orgId);
    expect(first.configuration.steps.find((s) => s.name === 'credentials')).toMatchObject({ ok: true });
    const [row] = await t.dataSource.query<{ origin: string }[]>(
      'SELECT client_secret_token_origin AS origin FROM organization WHERE id = $1',
      [orgId],
    );
    expect(row.origin).toBe(new URL(epic.tokenUrl).origin);

    // The same FHIR base now advertises the attacker's token endpoint.
    epic.advertiseTokenEndpoint(attacker.tokenUrl);
    try {
      const before = attacker.calls('token');
      const refused = await testConnection(admin, orgId);
      const step = refused.configuration.steps.find((s) => s.name === 'credentials')!;
      expect(step.ok).toBe(false);
      expect(step.message).toContain('the secret was not sent');
      const start = await admin.agent.get('/fhir/epic-authorize').query({ org: orgId });
      expect(start.status).toBe(303); // the authorize step needs no secret
      expect(attacker.calls('token')).toBe(before);
      expect(leaked(attacker, secret)).toBe(false);
    } finally {
      epic.advertiseTokenEndpoint(undefined);
    }
  });

  it('a refresh refused the secret keeps the tokens and tells the admin to enter the secret again', async () => {
    const { orgId, admin } = await setup();
    const callback = new URL(
      (
        await epic.authorizeAsUser(
          (await admin.agent.get('/fhir/epic-authorize').query({ org: orgId })).headers.location,
        )
      ).location!,
    );
    await admin.agent.get(callback.pathname + callback.search).expect(303);
    await t.dataSource.query(
      `UPDATE epic_credential SET expires_at = now() - interval '1 minute' WHERE organization_id = $1`,
      [orgId],
    );
    epic.advertiseTokenEndpoint(attacker.tokenUrl);
    t.app.get(SmartDiscoveryService).forget(epic.fhirBase);
    const attackerCalls = attacker.calls('token');
    try {
      const tested = await testConnection(admin, orgId);
      expect(JSON.stringify(tested)).toContain('enter the client secret again');
      const status = (await admin.agent.get('/fhir/epic-status').query({ org: orgId }).expect(200)).body as {
        lastError: string;
      };
      expect(status.lastError).toContain('the secret was not sent');
      const [{ n }] = await t.dataSource.query<{ n: number }[]>(
        'SELECT count(*)::int AS n FROM epic_credential WHERE organization_id = $1',
        [orgId],
      );
      expect(n).toBe(1); // the tokens were kept
      expect(attacker.calls('token')).toBe(attackerCalls);
    } finally {
      epic.advertiseTokenEndpoint(undefined);
      t.app.get(SmartDiscoveryService).forget(epic.fhirBase);
    }
  });

  it('disconnect revokes only at the token endpoint origin: a revocation endpoint elsewhere gets nothing', async () => {
    const { orgId, admin, secret } = await setup();
    const start = await admin.agent.get('/fhir/epic-authorize').query({ org: orgId });
    const callback = new URL((await epic.authorizeAsUser(start.headers.location)).location!);
    await admin.agent.get(callback.pathname + callback.search).expect(303);
    epic.advertiseRevocationEndpoint(attacker.revocationUrl);
    t.app.get(SmartDiscoveryService).forget(epic.fhirBase);
    const revokes = epic.calls('revoke');
    try {
      await admin.agent
        .post('/fhir/epic-disconnect')
        .set('x-csrf-token', admin.csrf)
        .send({ org: orgId })
        .expect(200);
      expect(attacker.calls('revoke')).toBe(0);
      expect(leaked(attacker, secret)).toBe(false);
      expect(epic.calls('revoke')).toBe(revokes); // not offered on the token endpoint's origin
    } finally {
      epic.advertiseRevocationEndpoint(undefined);
      t.app.get(SmartDiscoveryService).forget(epic.fhirBase);
    }
  });
});
