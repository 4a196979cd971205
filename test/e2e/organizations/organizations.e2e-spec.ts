import { readFileSync } from 'node:fs';

import { Logger } from '@nestjs/common';

import { OrganizationsService } from 'src/organizations/organizations.service';
import { Role } from 'src/users/user.types';

import { signIn, TestFactory, testSecret } from 'test/factories';
import { createTestApp, TestApp } from 'test/setup/test-app';

describe('organizations: CRUD, Epic client secret at rest, audit trail', () => {
  let t: TestApp;
  let factory: TestFactory;
  let root: Awaited<ReturnType<typeof signIn>>;

  beforeAll(async () => {
    t = await createTestApp();
    factory = new TestFactory(t);
    root = await signIn(t, await factory.user(Role.RootAdmin, null));
  });
  afterAll(() => t.close());

  const post = (path: string, body: object) =>
    root.agent.post(path).set('x-csrf-token', root.csrf).send(body);
  const put = (path: string, body: object) => root.agent.put(path).set('x-csrf-token', root.csrf).send(body);

  it('creates an organization with a slug from its name and refuses a duplicate slug', async () => {
    const name = `Saint Mary's ${Date.now()}`;
    const created = await post('/api/organizations', { name }).expect(201);
    expect(created.body).toMatchObject({
      name,
      epicEnvironment: 'sandbox',
      isConnected: false,
      hasClientSecret: false,
    });
    expect(created.body.slug).toMatch(/^saint-marys-\d+$/);
    const dup = await post('/api/organizations', { name: 'Other', slug: created.body.slug }).expect(409);
    expect(dup.body.message).toContain('already exists');
    expect(dup.body.code).toBe('CONFLICT');
  });

  it('answers validation errors with the field and the rule', async () => {
    const res = await post('/api/organizations', { name: '', slug: 'Bad Slug', extra: 1 }).expect(400);
    expect(res.body.message).toEqual(
      expect.arrayContaining([
        'property extra should not exist',
        'name must be 1 to 200 characters',
        'slug may contain lowercase letters, digits and single hyphens',
      ]),
    );
    expect(res.body).toMatchObject({
      statusCode: 400,
      code: 'VALIDATION_FAILED',
      fields: {
        extra: ['property extra should not exist'],
        name: ['name must be 1 to 200 characters'],
        slug: ['slug may contain lowercase letters, digits and single hyphens'],
      },
    });
    await root.agent.get('/api/organizations/not-a-uuid').expect(400);
  });

  it("answers the service's own field rules in the same shape as the DTO's", async () => {
    const org = await factory.organization();
    const fromDto = await put(`/api/organizations/${org.id}/epic-client`, {
      clientId: '',
      environment: 'sandbox',
    }).expect(400);
    const fromService = await put(`/api/organizations/${org.id}/epic-client`, {
      clientId: 'c',
      environment: 'sandbox',
      connectionMode: 'backend',
      scopes: 'system/Patient.read',
    }).expect(400);
    const noSlug = await post('/api/organizations', { name: '!!!' }).expect(400);
    for (const res of [fromDto, fromService, noSlug]) {
      const body = res.body as { fields: Record<string, string[]>; message: string[] };
      expect(Object.keys(body).sort()).toEqual(['code', 'fields', 'message', 'statusCode']);
      expect(body).toMatchObject({ statusCode: 400, code: 'VALIDATION_FAILED' });
      // `message` lists every message of `fields`, field by field.
      expect(body.message).toEqual(Object.values(body.fields).flat());
    }
    expect(Object.keys((fromDto.body as { fields: object }).fields)).toContain('clientId');
    expect(fromService.body).toMatchObject({
      fields: { tokenAuthMethod: [expect.stringMatching(/private_key_jwt/)] },
    });
    expect(noSlug.body).toMatchObject({ fields: { slug: [expect.stringMatching(/slug is required/)] } });
  });

  it('stores the client secret encrypted, never returns or renders it, and keeps it when left blank', async () => {
    const org = await factory.organization();
    const secret = testSecret('client');
    const saved = await put(`/api/organizations/${org.id}/epic-client`, {
      clientId: 'client-123',
      clientSecret: secret,
      environment: 'sandbox',
    }).expect(200);
    expect(saved.body).toMatchObject({
      epicClientId: 'client-123',
      hasClientSecret: true,
      fhirBaseUrl: 'https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4',
    });
    expect(JSON.stringify(saved.body)).not.toContain(secret);

    const [row] = await t.dataSource.query<{ client_secret_enc: string }[]>(
      'SELECT client_secret_enc FROM organization WHERE id = $1',
      [org.id],
    );
    expect(row.client_secret_enc).toMatch(/^v1\.test1\./);
    expect(row.client_secret_enc).not.toContain(secret);
    expect(row.client_secret_enc).not.toContain(Buffer.from(secret).toString('base64'));

    await put(`/api/organizations/${org.id}/epic-client`, {
      clientId: 'client-123',
      clientSecret: '',
      environment: 'sandbox',
    }).expect(200);
    await expect(
      t.app
        .get(OrganizationsService)
        .getClientSecretFor(org.id, 'https://fhir.epic.com/interconnect-fhir-oauth/oauth2/token'),
    ).resolves.toBe(secret);

    for (const path of [
      `/api/organizations/${org.id}`,
      '/api/organizations?limit=500',
      `/admin/organizations/${org.id}`,
      '/admin',
    ]) {
      const res = await root.agent.get(path).expect(200);
      expect(res.text).not.toContain(secret);
    }
    const page = await root.agent.get(`/admin/organizations/${org.id}`);
    expect(page.text).toContain('saved');
    const audit = await root.agent.get(`/api/organizations/${org.id}/audit-events`).expect(200);
    expect(JSON.stringify(audit.body)).not.toContain(secret);
    expect(audit.body[0]).toMatchObject({
      action: 'epic-client.registered',
      detail: { secretChanged: false },
    });
  });

  it('requires a base URL for production and https outside loopback', async () => {
    const org = await factory.organization();
    const missing = await put(`/api/organizations/${org.id}/epic-client`, {
      clientId: 'c',
      environment: 'production',
    });
    expect(missing.status).toBe(400);
    expect(missing.body.message).toEqual(['fhirBaseUrl is required for a production environment']);
    expect(missing.body.fields).toEqual({
      fhirBaseUrl: ['fhirBaseUrl is required for a production environment'],
    });
    const insecure = await put(`/api/organizations/${org.id}/epic-client`, {
      clientId: 'c',
      environment: 'production',
      fhirBaseUrl: 'http://ehr.example.org/fhir',
    });
    expect(insecure.body.message).toEqual(['fhirBaseUrl must use https']);
  });

  it('resets the connection when the client id or base URL changes', async () => {
    const org = await factory.organization();
    await put(`/api/organizations/${org.id}/epic-client`, { clientId: 'one', environment: 'sandbox' }).expect(
      200,
    );
    await t.dataSource.query(
      `INSERT INTO organization_connection (organization_id, is_connected, token_expiry)
       VALUES ($1, true, now() + interval '1 hour')
       ON CONFLICT (organization_id) DO UPDATE SET is_connected = true, token_expiry = EXCLUDED.token_expiry`,
      [org.id],
    );
    const res = await put(`/api/organizations/${org.id}/epic-client`, {
      clientId: 'two',
      environment: 'sandbox',
    });
    expect(res.body).toMatchObject({ isConnected: false, tokenExpiry: null });
  });

  it('creates an org admin with a one-time temporary password that must be changed', async () => {
    const org = await factory.organization();
    const res = await post(`/api/organizations/${org.id}/admins`, {
      email: `new-${Date.now()}@example.org`,
    }).expect(201);
    expect(res.body.user).toMatchObject({
      role: 'org_admin',
      organizationId: org.id,
      mustChangePassword: true,
    });
    expect(res.body.user.passwordHash).toBeUndefined();
    expect(res.body.temporaryPassword).toEqual(expect.any(String));
    const dupe = await post(`/api/organizations/${org.id}/admins`, {
      email: res.body.user.email.toUpperCase(),
    });
    expect(dupe.status).toBe(409);
    const [row] = await t.dataSource.query<{ password_hash: string }[]>(
      'SELECT password_hash FROM app_user WHERE id = $1',
      [res.body.user.id],
    );
    expect(row.password_hash).toMatch(/^scrypt\$/);
    expect(row.password_hash).not.toContain(res.body.temporaryPassword);
  });

  it("lists only the organization's administrators, not the patients and providers its launches signed in", async () => {
    const org = await factory.organization();
    const admin = await factory.user(Role.OrgAdmin, org.id);
    await factory.user(Role.Patient, org.id);
    await factory.user(Role.Provider, org.id);
    const res = await root.agent.get(`/api/organizations/${org.id}/admins`).expect(200);
    expect((res.body as { id: string; role: string }[]).map((u) => [u.id, u.role])).toEqual([
      [admin.id, 'org_admin'],
    ]);
  });

  it('deletes an organization with its users, keeps the audit event, and shows it to root admins', async () => {
    const org = await factory.organization();
    const admin = await factory.user(Role.OrgAdmin, org.id);
    await root.agent.delete(`/api/organizations/${org.id}`).set('x-csrf-token', root.csrf).expect(204);
    await root.agent.get(`/api/organizations/${org.id}`).expect(404);
    const users = await t.dataSource.query<unknown[]>('SELECT 1 FROM app_user WHERE id = $1', [admin.id]);
    expect(users).toHaveLength(0);
    const all = await root.agent.get('/api/audit-events?limit=200').expect(200);
    expect(all.body).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          action: 'organization.deleted',
          organization: org.name,
          organizationId: null,
        }),
      ]),
    );
  });

  it('shows org admins their own organization only', async () => {
    const [mine, other] = await Promise.all([factory.organization(), factory.organization()]);
    const admin = await signIn(t, await factory.user(Role.OrgAdmin, mine.id));
    const list = await admin.agent.get('/api/organizations').expect(200);
    expect(list.body.map((o: { id: string }) => o.id)).toEqual([mine.id]);
    await admin.agent.get(`/api/organizations/${other.id}`).expect(404);
  });

  it('redacts secret fields in what it logs, at any depth, and logs this run to a file', () => {
    const secret = testSecret('token');
    new Logger('RedactionCheck').log(
      { nested: { deeper: { access_token: secret, refreshToken: secret } }, client_secret: secret },
      'redaction check',
    );
    const log = readFileSync(process.env.LOG_FILE!, 'utf8');
    const line = log.split('\n').find((l) => l.includes('redaction check'));
    expect(line).toBeDefined();
    expect(line).not.toContain(secret);
    expect(JSON.parse(line!)).toMatchObject({
      nested: { deeper: { access_token: '[redacted]', refreshToken: '[redacted]' } },
      client_secret: '[redacted]',
    });
  });
});
