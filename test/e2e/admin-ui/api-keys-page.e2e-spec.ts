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

  it('names a resource type FHIR R4 does not define beside the field, keeps what was typed, and creates nothing', async () => {
    const before = await keyCount();
    const res = await create(admin, { name: 'Typo', resourceTypes: 'Patient, Foo' }).expect(400);
    expect(res.text).toContain('No key was created');
    expect(res.text).toContain(
      '<p class="field-error" id="resourceTypes-error">resourceTypes names a type that FHIR R4 does not define: Foo. Use resource type names as FHIR R4 spells them, such as Patient or Observation (http://hl7.org/fhir/R4/resourcelist.html)</p>',
    );
    expect(res.text).toContain('value="Patient, Foo"');
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

  describe('Edit', () => {
    const edit = (actor: Actor, keyId: string, form: Record<string, string>, orgId = orgA) =>
      actor.agent
        .post(`${page(orgId)}/${keyId}/edit`)
        .type('form')
        .send({ _csrf: actor.csrf, ...form });
    const row = async (keyId: string) =>
      (
        await t.dataSource.query<
          {
            name: string;
            access: string;
            resource_types: string[] | null;
            user_connections: boolean;
            expires_at: Date | null;
            updated_at: Date;
          }[]
        >(
          `SELECT name, access, resource_types, user_connections, expires_at, updated_at
             FROM api_key WHERE key_id = $1`,
          [keyId],
        )
      )[0];
    const updates = (keyId: string) =>
      t.dataSource.query<{ actor_user_id: string; detail: Record<string, unknown> }[]>(
        `SELECT actor_user_id, detail FROM audit_event WHERE action = 'api-key.updated' AND detail->>'keyId' = $1
          ORDER BY occurred_at`,
        [keyId],
      );
    const newKey = async (form: Record<string, string> = {}) => {
      const [, key, keyId] = WHOLE_KEY.exec(
        (await create(admin, { name: 'Editable', ...form }).expect(201)).text,
      )!;
      return { key, keyId };
    };

    it('offers an Edit form on each active key, filled in, with the CSRF field and never the secret', async () => {
      const { key, keyId } = await newKey({
        access: 'read_write',
        resourceTypes: 'Patient Observation',
        userConnections: 'true',
        expiresAt: '2099-01-31',
      });
      const res = await admin.agent.get(page()).expect(200);
      const form = new RegExp(
        `<form method="post" action="/admin/organizations/${orgA}/api-keys/${keyId}/edit" class="edit-api-key" novalidate>\\s*` +
          '<input type="hidden" name="_csrf" value="[^"]+">',
      );
      expect(res.text).toMatch(form);
      expect(res.text).toContain(`id="edit-${keyId}-name" name="name" value="Editable"`);
      expect(res.text).toContain(
        `id="edit-${keyId}-resourceTypes" name="resourceTypes" value="Patient, Observation"`,
      );
      expect(res.text).toMatch(
        new RegExp(`id="edit-${keyId}-userConnections" name="userConnections" value="true" checked`),
      );
      expect(res.text).toContain(`id="edit-${keyId}-expiresAt" name="expiresAt" value="2099-01-31"`);
      expect(res.text).toMatch(
        new RegExp(
          `id="edit-${keyId}-access"[^>]*>\\s*<option value="read">Read</option><option value="read_write" selected>`,
        ),
      );
      expect(res.text).not.toContain(key);
      expect(res.text).not.toContain(key.slice(-43));
    });

    it('changes the key through the service: back to the list with what changed, audited, honoured at once', async () => {
      const { key, keyId } = await newKey({ access: 'read', resourceTypes: 'Patient' });
      const res = await edit(admin, keyId, {
        name: 'Renamed lab feed',
        access: 'read_write',
        resourceTypes: 'Patient, Encounter',
        userConnections: 'true',
        expiresAt: '2098-05-01',
      }).expect(303);
      expect(res.headers.location).toBe(page());
      expect(await row(keyId)).toMatchObject({
        name: 'Renamed lab feed',
        access: 'read_write',
        resource_types: ['Patient', 'Encounter'],
        user_connections: true,
        expires_at: new Date('2098-05-01T00:00:00Z'),
      });
      expect(await t.app.get(ApiKeysService).authenticate(key)).toMatchObject({
        name: 'Renamed lab feed',
        access: 'read_write',
        resourceTypes: ['Patient', 'Encounter'],
        userConnections: true,
      });
      const after = await admin.agent.get(page()).expect(200);
      expect(after.text).toContain(
        `Saved ecgk_${keyId}… (Renamed lab feed): changed name, access, resource types, users&#x27; connections, expiry.`,
      );
      expect(after.text).not.toContain(key.slice(-43));
      const audit = await updates(keyId);
      expect(audit).toHaveLength(1);
      expect(audit[0].detail).toMatchObject({
        keyId,
        name: 'Renamed lab feed',
        changed: ['name', 'access', 'resourceTypes', 'userConnections', 'expiresAt'],
      });
      expect(JSON.stringify(audit[0].detail)).not.toContain(key.slice(-43));

      // Blank resource types and expiry: all types, never; an unchecked box: off.
      await edit(admin, keyId, {
        name: 'Renamed lab feed',
        access: 'read_write',
        resourceTypes: '',
        expiresAt: '',
      }).expect(303);
      expect(await row(keyId)).toMatchObject({
        resource_types: null,
        user_connections: false,
        expires_at: null,
      });

      // The same form again changes nothing and records nothing.
      await edit(admin, keyId, {
        name: 'Renamed lab feed',
        access: 'read_write',
        resourceTypes: '',
        expiresAt: '',
      }).expect(303);
      expect((await admin.agent.get(page()).expect(200)).text).toContain(
        `Nothing changed on ecgk_${keyId}… (Renamed lab feed).`,
      );
      expect(await updates(keyId)).toHaveLength(2);
    });

    it('keeps an expiry time set through the JSON API when its day is left as it is', async () => {
      const { keyId } = await newKey();
      await admin.agent
        .patch(`/api/organizations/${orgA}/api-keys/${keyId}`)
        .set('x-csrf-token', admin.csrf)
        .send({ expiresAt: '2097-03-04T12:30:00Z' })
        .expect(200);
      const res = await admin.agent.get(page()).expect(200);
      expect(res.text).toContain(`id="edit-${keyId}-expiresAt" name="expiresAt" value="2097-03-04"`);
      expect(res.text).toContain('Now 2097-03-04 12:30 UTC: keep the day to keep that time.');
      await edit(admin, keyId, { name: 'Timed', access: 'read', expiresAt: '2097-03-04' }).expect(303);
      expect(await row(keyId)).toMatchObject({ name: 'Timed', expires_at: new Date('2097-03-04T12:30:00Z') });
    });

    it('shows what was wrong beside each field, keeps what was typed, and changes nothing', async () => {
      const { keyId } = await newKey({ resourceTypes: 'Patient' });
      const before = await row(keyId);
      const res = await edit(admin, keyId, {
        name: '',
        access: 'read_write',
        resourceTypes: 'Patient, NotAType!',
        userConnections: 'true',
        expiresAt: '2001-02-03',
      }).expect(400);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.text).toContain(`<details class="edit-key" id="edit-${keyId}" open>`);
      expect(res.text).toContain('Nothing was changed: correct the fields marked below.');
      expect(res.text).toContain(
        `<p class="field-error" id="edit-${keyId}-name-error">name must be 1 to 100 characters</p>`,
      );
      expect(res.text).toContain(
        `id="edit-${keyId}-resourceTypes-error">each of resourceTypes must be a FHIR resource type name`,
      );
      expect(res.text).toContain(`id="edit-${keyId}-expiresAt-error">expiresAt must be in the future</p>`);
      expect(res.text).toContain(`name="resourceTypes" value="Patient, NotAType!"`); // what was typed stays
      expect(res.text).toContain(`name="expiresAt" value="2001-02-03"`);
      expect(res.text).toMatch(
        new RegExp(
          `id="edit-${keyId}-access"[^>]*>\\s*<option value="read">Read</option><option value="read_write" selected>`,
        ),
      );
      expect(res.text).not.toContain('No key was created'); // the create form is untouched
      expect(await row(keyId)).toEqual(before);
      expect(await updates(keyId)).toHaveLength(0);

      const lower = await edit(admin, keyId, { name: 'x', access: 'read', resourceTypes: 'patient' }).expect(
        400,
      );
      expect(lower.text).toContain(`id="edit-${keyId}-resourceTypes-error">`);
      expect(lower.text).toContain('name="name" value="x"');
      expect(await row(keyId)).toEqual(before);
    });

    it('names a resource type FHIR R4 does not define beside the key’s field, and changes nothing', async () => {
      const { keyId } = await newKey({ resourceTypes: 'Patient' });
      const before = await row(keyId);
      const res = await edit(admin, keyId, {
        name: 'Editable',
        access: 'read',
        resourceTypes: 'Patient, Observaton, Foo',
      }).expect(400);
      expect(res.text).toContain(`<details class="edit-key" id="edit-${keyId}" open>`);
      expect(res.text).toContain(
        `id="edit-${keyId}-resourceTypes-error">resourceTypes names types that FHIR R4 does not define: Observaton, Foo.`,
      );
      expect(res.text).toContain(`name="resourceTypes" value="Patient, Observaton, Foo"`);
      expect(await row(keyId)).toEqual(before);
      expect(await updates(keyId)).toHaveLength(0);
    });

    it('refuses a form without the CSRF token, and changes nothing', async () => {
      const { keyId } = await newKey();
      const before = await row(keyId);
      await admin.agent
        .post(`${page()}/${keyId}/edit`)
        .type('form')
        .send({ name: 'No token', access: 'read' })
        .expect(403);
      await admin.agent
        .post(`${page()}/${keyId}/edit`)
        .type('form')
        .send({ name: 'Bad token', access: 'read', _csrf: 'nope' })
        .expect(403);
      expect(await row(keyId)).toEqual(before);
    });

    it('renames a key made before the R4 type check (a type R4 does not define), its types unchanged', async () => {
      const { keyId } = await newKey({ resourceTypes: 'Patient' });
      await t.dataSource.query(
        `UPDATE api_key SET resource_types = '{Patient,NotAnR4Type}' WHERE key_id = $1`,
        [keyId],
      );
      await edit(admin, keyId, {
        name: 'Renamed legacy',
        access: 'read',
        resourceTypes: 'Patient NotAnR4Type',
      }).expect(303);
      expect(await row(keyId)).toMatchObject({
        name: 'Renamed legacy',
        resource_types: ['Patient', 'NotAnR4Type'],
      });
      // Changing the types still checks them all.
      await edit(admin, keyId, {
        name: 'Renamed legacy',
        access: 'read',
        resourceTypes: 'NotAnR4Type',
      }).expect(400);
    });

    it('offers no Edit for revoked or expired keys, and refuses one posted anyway', async () => {
      const revoked = await newKey();
      const expired = await newKey();
      await admin.agent
        .post(`${page()}/${revoked.keyId}/revoke`)
        .type('form')
        .send({ _csrf: admin.csrf })
        .expect(303);
      await t.dataSource.query(`UPDATE api_key SET expires_at = now() - interval '1 day' WHERE key_id = $1`, [
        expired.keyId,
      ]);
      const res = await admin.agent.get(page()).expect(200);
      expect(res.text).toContain(`<tr data-key-id="${expired.keyId}" data-state="expired">`);
      for (const { keyId } of [revoked, expired]) {
        expect(res.text).not.toContain(`/api-keys/${keyId}/edit`);
        const before = await row(keyId);
        const refused = await edit(admin, keyId, {
          name: 'Revived',
          access: 'read',
          expiresAt: '2099-01-01',
        }).expect(409);
        expect(refused.text).toContain('cannot be changed. Create a new key instead.');
        expect(await row(keyId)).toEqual(before);
      }
    });

    it('lets root admins edit; another organization’s admin gets a 404 and changes nothing', async () => {
      const { keyId } = await newKey();
      const before = await row(keyId);
      const other = actors.orgAdminB;
      await edit(other, keyId, { name: 'Intruder', access: 'read_write' }).expect(404);
      await edit(other, keyId, { name: 'Intruder', access: 'read_write' }, orgB).expect(404);
      for (const who of ['patient', 'provider'] as const) {
        await edit(actors[who], keyId, { name: 'Intruder', access: 'read_write' }).expect(403);
      }
      expect(await row(keyId)).toEqual(before);
      await edit(actors.rootAdmin, keyId, { name: 'By root', access: 'read' }).expect(303);
      expect((await row(keyId)).name).toBe('By root');
      const roles = await t.dataSource.query<{ role: string }[]>(
        `SELECT u.role FROM audit_event e JOIN app_user u ON u.id = e.actor_user_id
          WHERE e.action = 'api-key.updated' AND e.detail->>'keyId' = $1`,
        [keyId],
      );
      expect(roles).toEqual([{ role: 'root_admin' }]);
    });
  });
});
