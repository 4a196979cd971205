import { ApiKeysService } from 'src/api-keys/api-keys.service';
import { DomainError } from 'src/common/errors/domain-error';

import { TestFactory } from 'test/factories';
import { Actor, makeActors } from 'test/factories/actors';
import { createTestApp, TestApp } from 'test/setup/test-app';

const WHOLE_KEY = /<code id="new-api-key">(ecgk_([a-z0-9]{12})_[A-Za-z0-9_-]{43})<\/code>/;

/**
 * An organization's API keys page over HTTP: the list, the create form (the key shown on its
 * answer only), Revoke, and who may open it.
 */
describe('API keys page', () => {
  let t: TestApp;
  let orgA: string;
  let orgB: string;
  let actors: Awaited<ReturnType<typeof makeActors>>;
  let admin: Actor;

  beforeAll(async () => {
    t = await createTestApp();
    const factory = new TestFactory(t);
    [orgA, orgB] = (await Promise.all([factory.organization(), factory.organization()])).map((o) => o.id);
    actors = await makeActors(t, factory, orgA, orgB);
    admin = actors.orgAdminA;
  });
  afterAll(() => t.close());

  const page = (orgId = orgA) => `/admin/organizations/${orgId}/api-keys`;
  const create = (actor: Actor, form: Record<string, string>, orgId = orgA) =>
    actor.agent
      .post(page(orgId))
      .type('form')
      .send({ _csrf: actor.csrf, ...form });
  const keyCount = async (orgId = orgA): Promise<number> =>
    (
      await t.dataSource.query<{ n: number }[]>(
        'SELECT count(*)::int AS n FROM api_key WHERE organization_id = $1',
        [orgId],
      )
    )[0].n;
  const refused = (key: string) =>
    t.app
      .get(ApiKeysService)
      .authenticate(key)
      .then(
        () => false,
        (e: unknown) => e instanceof DomainError,
      );

  it('shows the organization’s gateway base URL with a Copy button', async () => {
    const slug = (
      await t.dataSource.query<{ slug: string }[]>('SELECT slug FROM organization WHERE id = $1', [orgA])
    )[0].slug;
    const res = await admin.agent.get(page()).expect(200);
    expect(res.text).toContain(
      `<code id="gateway-base-url">http://localhost:3000/gateway/${slug}/fhir</code>`,
    );
    expect(res.text).toContain('data-copy="gateway-base-url"');
  });

  it('is linked from the organization page and offers the create form, with no script inline', async () => {
    const org = await admin.agent.get(`/admin/organizations/${orgA}`).expect(200);
    expect(org.text).toContain(`href="/admin/organizations/${orgA}/api-keys"`);
    const res = await admin.agent.get(page()).expect(200);
    expect(res.text).toContain('<title>API keys · epic-connect</title>');
    expect(res.text).toContain('No keys yet.');
    expect(res.text).toContain(
      `<form method="post" action="/admin/organizations/${orgA}/api-keys" id="create-api-key"`,
    );
    expect(res.text).toMatch(/<input type="hidden" name="_csrf" value="[^"]+">/);
    for (const field of ['name', 'access', 'resourceTypes', 'userConnections', 'expiresAt']) {
      expect(res.text).toContain(`id="${field}"`);
    }
    expect(res.text).not.toContain('id="new-api-key"');
    expect(res.text).not.toMatch(/<script>(?!<)/);
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('creates a key and shows it on that answer only, with a Copy button and the warning', async () => {
    const res = await create(admin, {
      name: 'Lab interface',
      access: 'read_write',
      resourceTypes: 'Patient, Observation',
      userConnections: 'true',
      expiresAt: '2099-01-31',
    }).expect(201);
    expect(res.headers['cache-control']).toBe('no-store');
    const [, key, keyId] = WHOLE_KEY.exec(res.text)!;
    expect(res.text).toContain('it will not be shown again');
    expect(res.text).toContain('<button type="button" class="copy" data-copy="new-api-key"');
    expect(res.text).toMatch(/<script src="\/static\/js\/copy\.js" defer><\/script>/);
    expect(res.text).toContain(`<tr data-key-id="${keyId}" data-state="active">`);
    expect(res.text).toContain('Read and write');
    expect(res.text).toContain('Patient, Observation');
    expect(res.text).toContain('2099-01-31 00:00 UTC');
    expect(await t.app.get(ApiKeysService).authenticate(key)).toMatchObject({
      organizationId: orgA,
      access: 'read_write',
      resourceTypes: ['Patient', 'Observation'],
      userConnections: true,
    });

    const again = await admin.agent.get(page()).expect(200);
    expect(again.text).not.toContain(key);
    expect(again.text).not.toContain(key.slice(-43));
    expect(again.text).toContain(`<code>ecgk_${keyId}_…</code>`);
    expect(again.text).not.toContain('id="new-api-key"');
  });

  it('shows what was wrong beside each field and creates nothing', async () => {
    const before = await keyCount();
    const res = await create(admin, {
      name: '',
      access: 'write',
      resourceTypes: 'patient',
      expiresAt: '2000-01-01',
    }).expect(400);
    expect(res.text).toContain('No key was created');
    expect(res.text).toContain('<p class="field-error" id="name-error">name must be 1 to 100 characters</p>');
    expect(res.text).toContain('id="access-error">access must be read or read_write</p>');
    expect(res.text).toContain('id="resourceTypes-error">each of resourceTypes must be a FHIR resource type');
    expect(res.text).toContain('id="expiresAt-error">expiresAt must be in the future</p>');
    expect(res.text).toContain('value="patient"'); // what was typed stays
    expect(res.text).not.toContain('id="new-api-key"');
    expect(await keyCount()).toBe(before);
  });

  it('refuses a form without the CSRF token', async () => {
    const before = await keyCount();
    await admin.agent.post(page()).type('form').send({ name: 'No token' }).expect(403);
    await admin.agent.post(page()).type('form').send({ name: 'Bad token', _csrf: 'nope' }).expect(403);
    expect(await keyCount()).toBe(before);
  });

  it('revokes a key: refused at once, said so once, and no Revoke button any more', async () => {
    const created = await create(admin, { name: 'To revoke', access: 'read' }).expect(201);
    const [, key, keyId] = WHOLE_KEY.exec(created.text)!;
    expect(created.text).toMatch(
      new RegExp(
        `action="/admin/organizations/${orgA}/api-keys/${keyId}/revoke" class="inline" data-confirm="Revoke`,
      ),
    );
    await admin.agent.post(`${page()}/${keyId}/revoke`).type('form').send({ name: 'x' }).expect(403); // no CSRF token
    expect(await refused(key)).toBe(false);

    const res = await admin.agent
      .post(`${page()}/${keyId}/revoke`)
      .type('form')
      .send({ _csrf: admin.csrf })
      .expect(303);
    expect(res.headers.location).toBe(page());
    expect(await refused(key)).toBe(true);
    const after = await admin.agent.get(page()).expect(200);
    expect(after.text).toContain(`Revoked ecgk_${keyId}… (To revoke)`);
    expect(after.text).toContain(`<tr data-key-id="${keyId}" data-state="revoked">`);
    expect(after.text).not.toContain(`/api-keys/${keyId}/revoke`);
    expect((await admin.agent.get(page()).expect(200)).text).not.toContain(`Revoked ecgk_${keyId}…`);

    await admin.agent.post(`${page()}/${keyId}/revoke`).type('form').send({ _csrf: admin.csrf }).expect(303);
    expect((await admin.agent.get(page()).expect(200)).text).toContain('was already revoked');
  });

  it('opens for root admins and the organization’s admins only; another organization is a 404', async () => {
    const created = await create(admin, { name: 'Guarded' }).expect(201);
    const [, key, keyId] = WHOLE_KEY.exec(created.text)!;
    const expected = {
      anonymous: 303,
      patient: 403,
      provider: 403,
      orgAdminA: 200,
      orgAdminB: 404,
      rootAdmin: 200,
    };
    for (const [who, status] of Object.entries(expected)) {
      const res = await actors[who as keyof typeof expected].agent.get(page()).expect(status);
      if (status === 200) expect(res.text).toContain(`data-key-id="${keyId}"`);
    }
    const other = actors.orgAdminB;
    await create(other, { name: 'Intruder' }, orgA).expect(404);
    await other.agent.post(`${page()}/${keyId}/revoke`).type('form').send({ _csrf: other.csrf }).expect(404);
    // Through its own organization's address, A's key is unknown.
    await other.agent
      .post(`${page(orgB)}/${keyId}/revoke`)
      .type('form')
      .send({ _csrf: other.csrf })
      .expect(404);
    expect(await refused(key)).toBe(false);
    const root = await create(actors.rootAdmin, { name: 'By root' }, orgB).expect(201);
    expect(root.text).toMatch(WHOLE_KEY);
    await actors.orgAdminB.agent.get(page(orgB)).expect(200);
  });
});
