import { readFileSync } from 'node:fs';

import { Role } from 'src/users/user.types';

import { csrfFrom, signIn, TestFactory } from 'test/factories';
import { CALLBACK, connectedOrganization } from 'test/factories/epic-connection';
import { FakeEpic, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

describe('status, disconnect and re-authentication of the organization connection', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let factory: TestFactory;

  beforeAll(async () => {
    [t, epic] = await Promise.all([createTestApp(), startFakeEpic({ revocationEndpoint: true })]);
    factory = new TestFactory(t);
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });

  const connected = (options: { persistentAccess?: boolean } = {}, tokenAuthMethod?: string) =>
    connectedOrganization(t, epic, { ...options, tokenAuthMethod });

  it('reports the connection without any token, secret or code', async () => {
    const { orgId, admin } = await connected();
    const res = await admin.agent.get('/fhir/epic-status').query({ org: orgId }).expect(200);
    expect(res.body).toMatchObject({
      configured: true,
      connected: true,
      expired: false,
      refreshable: true,
      scopes: expect.arrayContaining(['openid']),
      lastError: null,
      callbackUrl: CALLBACK,
    });
    expect(new Date(res.body.expiresAt).getTime()).toBeGreaterThan(Date.now());
    const token = epic.requests('token').at(-1)!.responseBody as Record<string, string>;
    for (const value of [token.access_token, token.refresh_token, token.id_token]) {
      expect(JSON.stringify(res.body)).not.toContain(value);
    }
  });

  it('shows refreshable: false for a connection without persistent access', async () => {
    const { orgId, admin } = await connected({ persistentAccess: false });
    const res = await admin.agent.get(`/fhir/epic-status?org=${orgId}`).expect(200);
    expect(res.body).toMatchObject({ connected: true, refreshable: false });
  });

  it('disconnects: revokes at the server when it offers revocation, deletes the tokens, audits', async () => {
    const { orgId, admin } = await connected();
    const revokesBefore = epic.calls('revoke');
    await admin.agent.post('/fhir/epic-disconnect').send({ org: orgId }).expect(403); // no CSRF token
    const res = await admin.agent
      .post('/fhir/epic-disconnect')
      .set('x-csrf-token', admin.csrf)
      .send({ org: orgId })
      .expect(200);
    expect(res.body).toMatchObject({ connected: false, expiresAt: null, refreshable: false });
    expect(epic.calls('revoke')).toBe(revokesBefore + 2); // refresh token, then access token
    const rows = await t.dataSource.query<unknown[]>(
      'SELECT 1 FROM epic_credential WHERE organization_id = $1',
      [orgId],
    );
    expect(rows).toHaveLength(0);
    const [event] = await t.dataSource.query<{ detail: { revoked: boolean } }[]>(
      `SELECT detail FROM audit_event WHERE organization_id = $1 AND action = 'epic.disconnect'`,
      [orgId],
    );
    expect(event.detail.revoked).toBe(true);
  });

  it('still deletes the tokens when revocation fails', async () => {
    const { orgId, admin } = await connected();
    epic.failNext('revoke', { status: 503 });
    await admin.agent
      .post('/fhir/epic-disconnect')
      .set('x-csrf-token', admin.csrf)
      .send({ org: orgId })
      .expect(200);
    const rows = await t.dataSource.query<unknown[]>(
      'SELECT 1 FROM epic_credential WHERE organization_id = $1',
      [orgId],
    );
    expect(rows).toHaveLength(0);
  });

  it('revokes only at the server that issued the tokens', async () => {
    const { orgId, admin } = await connected();
    // Tokens from another server than the registered one (an older row, say): not sent here.
    await t.dataSource.query(
      `UPDATE epic_credential SET fhir_base_url = 'https://old-ehr.example.org/fhir/R4' WHERE organization_id = $1`,
      [orgId],
    );
    const revokesBefore = epic.calls('revoke');
    await admin.agent
      .post('/fhir/epic-disconnect')
      .set('x-csrf-token', admin.csrf)
      .send({ org: orgId })
      .expect(200);
    expect(epic.calls('revoke')).toBe(revokesBefore);
    const [event] = await t.dataSource.query<{ detail: { revoked: unknown; hadTokens: boolean } }[]>(
      `SELECT detail FROM audit_event WHERE organization_id = $1 AND action = 'epic.disconnect'`,
      [orgId],
    );
    expect(event.detail).toMatchObject({ revoked: 'issuer-not-registered', hadTokens: true });
  });

  it('re-authenticates: a confirmation page, then a POST clears the tokens first and starts the flow', async () => {
    const { orgId, admin } = await connected();
    const page = await admin.agent.get(`/connect_epic/${orgId}`).expect(200);
    expect(page.text).toContain('Clear tokens and connect again');
    let rows = await t.dataSource.query<unknown[]>(
      'SELECT 1 FROM epic_credential WHERE organization_id = $1',
      [orgId],
    );
    expect(rows).toHaveLength(1); // the GET changes nothing
    const res = await admin.agent
      .post(`/connect_epic/${orgId}`)
      .type('form')
      .send({ _csrf: csrfFrom(page.text) })
      .expect(200);
    // A page that moves on to Epic by itself (a form's 303 to Epic would break the CSP form-action).
    const authorize = /<meta http-equiv="refresh" content="0;url=([^"]+)">/
      .exec(res.text)![1]
      .replace(/&amp;/g, '&')
      .replace(/&#x3D;/g, '=');
    expect(authorize.startsWith(epic.authorizeUrl)).toBe(true);
    expect(res.text).toContain('id="continue-to-epic"');
    rows = await t.dataSource.query<unknown[]>('SELECT 1 FROM epic_credential WHERE organization_id = $1', [
      orgId,
    ]);
    expect(rows).toHaveLength(0);
    const status = await admin.agent.get(`/fhir/epic-status?org=${orgId}`).expect(200);
    expect(status.body.connected).toBe(false);
  });

  it("keeps other organizations' connections out of reach (404)", async () => {
    const { orgId } = await connected();
    const other = await factory.organization();
    const stranger = await signIn(t, await factory.user(Role.OrgAdmin, other.id));
    await stranger.agent.get(`/fhir/epic-status?org=${orgId}`).expect(404);
    await stranger.agent
      .post('/fhir/epic-disconnect')
      .set('x-csrf-token', stranger.csrf)
      .send({ org: orgId })
      .expect(404);
    await stranger.agent.get(`/connect_epic/${orgId}`).expect(404);
    const rows = await t.dataSource.query<unknown[]>(
      'SELECT 1 FROM epic_credential WHERE organization_id = $1',
      [orgId],
    );
    expect(rows).toHaveLength(1);
  });

  it('sends the client secret in the form body when client_secret_post is chosen', async () => {
    const { orgId, admin } = await connected({}, 'client_secret_post');
    const exchange = epic.requests('token').at(-1)!;
    expect(exchange.headers.authorization).toBeUndefined();
    expect(exchange.form?.client_secret).toBeTruthy();
    const res = await admin.agent.get(`/fhir/epic-status?org=${orgId}`).expect(200);
    expect(res.body.connected).toBe(true);
  });

  it('tells the admin what to register at Epic', async () => {
    const { orgId, admin } = await connected();
    const res = await admin.agent.get(`/fhir/epic-registration?org=${orgId}`).expect(200);
    expect(res.body).toEqual({
      connectionMode: 'interactive',
      tokenAuthMethod: 'client_secret_basic',
      redirectUri: CALLBACK,
      // The launch URL always names its organization.
      ehrLaunchUrl: expect.stringMatching(/^http:\/\/localhost:3000\/fhir\/epic-launch\?org=org-[0-9a-f]+$/),
      environment: 'sandbox',
      jwksUrl: 'http://localhost:3000/.well-known/jwks-sandbox.json',
      scopes: {
        organization: expect.arrayContaining(['openid', 'fhirUser', 'offline_access', 'user/Patient.read']),
        providerEhrLaunch: expect.arrayContaining(['launch', 'openid', 'fhirUser', 'user/Patient.read']),
        patientStandalone: expect.arrayContaining([
          'openid',
          'fhirUser',
          'offline_access',
          'patient/Patient.read',
        ]),
      },
    });
  });

  it('logs a whole connect and disconnect flow without any code, verifier, token or secret', async () => {
    const { orgId, admin } = await connected();
    await admin.agent
      .post('/fhir/epic-disconnect')
      .set('x-csrf-token', admin.csrf)
      .send({ org: orgId })
      .expect(200);
    const exchange = epic.requests('token').at(-1)!;
    const issued = exchange.responseBody as Record<string, string>;
    const secrets = [
      exchange.form!.code,
      exchange.form!.code_verifier,
      issued.access_token,
      issued.refresh_token,
      issued.id_token,
      Buffer.from(String(exchange.headers.authorization).replace(/^Basic /, ''), 'base64')
        .toString()
        .split(':')[1],
    ];
    expect(secrets.every((v) => typeof v === 'string' && v.length > 8)).toBe(true);
    const log = readFileSync(process.env.LOG_FILE!, 'utf8');
    expect(log).toContain(`Connected organization ${orgId} to Epic`); // the flow was logged, by id
    for (const secret of secrets) expect(log).not.toContain(secret);
  });
});
