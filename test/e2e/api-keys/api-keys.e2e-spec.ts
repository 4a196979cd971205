import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { Logger } from '@nestjs/common';

import { ApiKeysService } from 'src/api-keys/api-keys.service';
import type { ApiKeyView, CreatedApiKey } from 'src/api-keys/api-keys.types';
import { DomainError, ErrorCode } from 'src/common/errors/domain-error';

import { TestFactory } from 'test/factories';
import { Actor, makeActors } from 'test/factories/actors';
import { API_KEY_VIEW_FIELDS } from 'test/factories/api-keys';
import { createTestApp, TestApp } from 'test/setup/test-app';

const KEY_SHAPE = /^ecgk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;

const secretPart = (key: string): string => KEY_SHAPE.exec(key)![2];
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * API keys through the JSON API and ApiKeysService.authenticate, the gateway's contract: a key is
 * shown once and stored as a hash, refused with one message whatever is wrong with it, honours
 * expiry and revocation, belongs to one organization, and is audited without its secret.
 */
describe('API keys: JSON API and authentication', () => {
  let t: TestApp;
  let sut: ApiKeysService;
  let orgA: string;
  let orgB: string;
  let actors: Awaited<ReturnType<typeof makeActors>>;
  let rootAdmin: Actor;
  let adminA: Actor;
  /** Every key string created here: none may appear in a listing, the audit trail or the log. */
  const created: string[] = [];

  beforeAll(async () => {
    t = await createTestApp();
    sut = t.app.get(ApiKeysService);
    const factory = new TestFactory(t);
    [orgA, orgB] = (await Promise.all([factory.organization(), factory.organization()])).map((o) => o.id);
    actors = await makeActors(t, factory, orgA, orgB);
    ({ rootAdmin, orgAdminA: adminA } = actors);
  });
  afterAll(() => t.close());

  const path = (orgId: string, keyId = ''): string =>
    `/api/organizations/${orgId}/api-keys${keyId ? `/${keyId}` : ''}`;
  const post = (actor: Actor, orgId: string, body: object) =>
    actor.agent.post(path(orgId)).set('x-csrf-token', actor.csrf).send(body);
  const patch = (actor: Actor, orgId: string, keyId: string, body: object) =>
    actor.agent.patch(path(orgId, keyId)).set('x-csrf-token', actor.csrf).send(body);
  const revoke = (actor: Actor, orgId: string, keyId: string) =>
    actor.agent.delete(path(orgId, keyId)).set('x-csrf-token', actor.csrf);

  async function createKey(body: object = {}, actor = adminA, orgId = orgA): Promise<CreatedApiKey> {
    const res = await post(actor, orgId, { name: `Key ${randomUUID().slice(0, 8)}`, ...body }).expect(201);
    created.push((res.body as CreatedApiKey).secret);
    return res.body as CreatedApiKey;
  }

  /** The refusal `authenticate` throws for `presented`: must be the one generic 401. */
  async function refusal(presented: string): Promise<DomainError> {
    const error: unknown = await sut.authenticate(presented).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DomainError);
    expect((error as DomainError).code).toBe(ErrorCode.Unauthenticated);
    return error as DomainError;
  }

  it('creates a key and shows it once: the answer has it, listings never do, the row holds only its SHA-256', async () => {
    const { key, secret } = await createKey({
      name: 'Lab interface',
      access: 'read_write',
      resourceTypes: ['Patient', 'Observation', 'Patient'],
      userConnections: true,
    });
    const [, keyId, secretValue] = KEY_SHAPE.exec(secret)!;
    expect(key).toMatchObject({
      keyId,
      prefix: `ecgk_${keyId}`,
      organizationId: orgA,
      name: 'Lab interface',
      access: 'read_write',
      resourceTypes: ['Patient', 'Observation'],
      userConnections: true,
      state: 'active',
      expiresAt: null,
      revokedAt: null,
      lastUsedAt: null,
      createdBy: expect.any(String),
    });
    expect(Object.keys(key).sort()).toEqual(API_KEY_VIEW_FIELDS);

    const list = await adminA.agent.get(path(orgA)).expect(200);
    const one = await adminA.agent.get(path(orgA, keyId)).expect(200);
    expect((list.body as ApiKeyView[]).map((k) => k.keyId)).toContain(keyId);
    expect(one.body).toEqual({ ...key, lastUsedAt: null });
    for (const shown of [list.text, one.text]) {
      expect(shown).not.toContain(secretValue);
      expect(shown).not.toContain(sha256(secretValue));
    }
    for (const item of list.body as object[]) expect(Object.keys(item).sort()).toEqual(API_KEY_VIEW_FIELDS);

    const [row] = await t.dataSource.query<{ secret_hash: string; everything: string }[]>(
      `SELECT secret_hash, to_jsonb(k)::text AS everything FROM api_key k WHERE key_id = $1`,
      [keyId],
    );
    expect(row.secret_hash).toBe(sha256(secretValue));
    expect(row.everything).not.toContain(secretValue);

    expect(await sut.authenticate(secret)).toEqual({
      keyId,
      organizationId: orgA,
      name: 'Lab interface',
      access: 'read_write',
      resourceTypes: ['Patient', 'Observation'],
      userConnections: true,
    });
  });

  it('defaults to a read key for all resource types, without users’ connections or expiry', async () => {
    const { key, secret } = await createKey({ name: 'Defaults' });
    expect(key).toMatchObject({
      access: 'read',
      resourceTypes: null,
      userConnections: false,
      expiresAt: null,
    });
    expect(await sut.authenticate(secret)).toMatchObject({ access: 'read', resourceTypes: null });
  });

  it('refuses malformed, unknown, wrong-secret, revoked and expired keys with the same message', async () => {
    const good = await createKey();
    const revoked = await createKey();
    await revoke(adminA, orgA, revoked.key.keyId).expect(200);
    const expired = await createKey();
    await t.dataSource.query(
      `UPDATE api_key SET expires_at = now() - interval '1 minute' WHERE key_id = $1`,
      [expired.key.keyId],
    );
    const [, keyId, secret] = KEY_SHAPE.exec(good.secret)!;
    const otherSecret = KEY_SHAPE.exec(revoked.secret)![2];
    const presented = [
      '',
      'garbage',
      `Bearer ${good.secret}`,
      ` ${good.secret}`,
      good.secret.toUpperCase(),
      `ecgk_${keyId}_${otherSecret}`, // the right id with another key's secret
      `ecgk_zzzzzzzzzzzz_${secret}`, // an unknown id with a well-formed secret
      `ecgk_${keyId}_${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`,
      revoked.secret,
      expired.secret,
    ];
    const messages = new Set<string>();
    for (const key of presented) messages.add((await refusal(key)).message);
    expect([...messages]).toEqual([expect.stringMatching(/not valid/)]);
    expect(await sut.authenticate(good.secret)).toMatchObject({ keyId });
  });

  it('refuses a key from the moment it expires, even while it is cached', async () => {
    const { key, secret } = await createKey({ expiresAt: new Date(Date.now() + 1500).toISOString() });
    expect(key.expiresAt).not.toBeNull();
    expect(await sut.authenticate(secret)).toMatchObject({ keyId: key.keyId }); // now cached
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, Date.parse(key.expiresAt!) - Date.now() + 50)),
    );
    await refusal(secret);
    const shown = await adminA.agent.get(path(orgA, key.keyId)).expect(200);
    expect(shown.body).toMatchObject({ state: 'expired' });

    // An expired key has ended like a revoked one: no new date (a leaked old key must not come back),
    // no other change, nothing audited, and it stays refused.
    const later = new Date(Date.now() + 3_600_000).toISOString();
    for (const change of [{ expiresAt: later }, { expiresAt: null }, { name: 'Renamed' }, {}]) {
      const refused = await patch(adminA, orgA, key.keyId, change).expect(409);
      expect(refused.body).toMatchObject({
        code: 'CONFLICT',
        message: 'This API key is expired and cannot be changed. Create a new key instead.',
      });
    }
    const after = await adminA.agent.get(path(orgA, key.keyId)).expect(200);
    expect(after.body).toMatchObject({ state: 'expired', expiresAt: key.expiresAt, name: key.name });
    const updates = await t.dataSource.query<{ n: number }[]>(
      `SELECT count(*)::int AS n FROM audit_event WHERE action = 'api-key.updated' AND detail->>'keyId' = $1`,
      [key.keyId],
    );
    expect(updates[0].n).toBe(0);
    await refusal(secret);
  });

  it('revokes at once on this instance, idempotently, and a revoked key cannot be changed', async () => {
    const { key, secret } = await createKey();
    expect(await sut.authenticate(secret)).toMatchObject({ keyId: key.keyId }); // cached from here on
    const first = await revoke(adminA, orgA, key.keyId).expect(200);
    expect(first.body).toMatchObject({ keyId: key.keyId, state: 'revoked', revokedAt: expect.any(String) });
    await refusal(secret);
    const again = await revoke(adminA, orgA, key.keyId).expect(200);
    expect(again.body).toMatchObject({ state: 'revoked', revokedAt: (first.body as ApiKeyView).revokedAt });
    const changed = await patch(adminA, orgA, key.keyId, { name: 'Back to life' }).expect(409);
    expect(changed.body).toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/revoked/) });
    await refusal(secret);

    const audit = await t.dataSource.query<{ n: number }[]>(
      `SELECT count(*)::int AS n FROM audit_event WHERE action = 'api-key.revoked' AND detail->>'keyId' = $1`,
      [key.keyId],
    );
    expect(audit[0].n).toBe(1);
  });

  it('changes what a key may do, applied at once, and records only real changes', async () => {
    const { key, secret } = await createKey({ name: 'Before', expiresAt: '2099-01-01' });
    const res = await patch(adminA, orgA, key.keyId, {
      name: '  After  ',
      access: 'read_write',
      resourceTypes: ['Encounter', 'Encounter', 'Condition'],
      userConnections: true,
      expiresAt: null,
    }).expect(200);
    expect(res.body).toMatchObject({
      name: 'After',
      access: 'read_write',
      resourceTypes: ['Encounter', 'Condition'],
      userConnections: true,
      expiresAt: null,
      state: 'active',
    });
    expect(await sut.authenticate(secret)).toEqual({
      keyId: key.keyId,
      organizationId: orgA,
      name: 'After',
      access: 'read_write',
      resourceTypes: ['Encounter', 'Condition'],
      userConnections: true,
    });
    await patch(adminA, orgA, key.keyId, { name: 'After', access: 'read_write' }).expect(200);
    const allTypes = await patch(adminA, orgA, key.keyId, { resourceTypes: null }).expect(200);
    expect(allTypes.body).toMatchObject({ resourceTypes: null, name: 'After' });

    const updates = await t.dataSource.query<{ detail: { changed: string[] } }[]>(
      `SELECT detail FROM audit_event WHERE action = 'api-key.updated' AND detail->>'keyId' = $1
        ORDER BY occurred_at`,
      [key.keyId],
    );
    expect(updates.map((u) => u.detail.changed)).toEqual([
      ['name', 'access', 'resourceTypes', 'userConnections', 'expiresAt'],
      ['resourceTypes'],
    ]);
  });

  it('keeps each organization’s keys to itself: another organization’s admin gets 404', async () => {
    const { key } = await createKey();
    const adminB = actors.orgAdminB;
    await adminB.agent.get(path(orgA)).expect(404);
    await adminB.agent.get(path(orgA, key.keyId)).expect(404);
    await post(adminB, orgA, { name: 'Intruder' }).expect(404);
    await patch(adminB, orgA, key.keyId, { name: 'Taken' }).expect(404);
    await revoke(adminB, orgA, key.keyId).expect(404);
    // Its own organization's path does not reach A's key either.
    await adminB.agent.get(path(orgB, key.keyId)).expect(404);
    await patch(adminB, orgB, key.keyId, { name: 'Taken' }).expect(404);
    await revoke(adminB, orgB, key.keyId).expect(404);
    await revoke(rootAdmin, orgB, key.keyId).expect(404);
    expect(
      ((await adminB.agent.get(path(orgB)).expect(200)).body as ApiKeyView[]).map((k) => k.keyId),
    ).not.toContain(key.keyId);
    const still = await adminA.agent.get(path(orgA, key.keyId)).expect(200);
    expect(still.body).toMatchObject({ name: key.name, state: 'active' });

    // Root admins manage any organization's keys; an unknown organization is a 404.
    const byRoot = await createKey({ name: 'By root' }, rootAdmin, orgB);
    expect(byRoot.key.organizationId).toBe(orgB);
    await rootAdmin.agent.get(path(randomUUID())).expect(404);
    await post(rootAdmin, randomUUID(), { name: 'Nowhere' }).expect(404);
  });

  it('admits root and org admins only, and needs the CSRF header to write', async () => {
    const { key } = await createKey();
    for (const who of ['patient', 'provider'] as const) {
      await actors[who].agent.get(path(orgA)).expect(403);
      await post(actors[who], orgA, { name: 'No' }).expect(403);
    }
    await actors.anonymous.agent.get(path(orgA)).expect(401);
    await adminA.agent.post(path(orgA)).send({ name: 'No token' }).expect(403);
    await adminA.agent.patch(path(orgA, key.keyId)).send({ name: 'No token' }).expect(403);
    await adminA.agent.delete(path(orgA, key.keyId)).expect(403);
    await adminA.agent.delete(path(orgA, key.keyId)).set('x-csrf-token', 'not-the-token').expect(403);
    expect((await adminA.agent.get(path(orgA, key.keyId)).expect(200)).body).toMatchObject({
      state: 'active',
    });
    const names = ((await adminA.agent.get(path(orgA)).expect(200)).body as ApiKeyView[]).map((k) => k.name);
    expect(names).not.toContain('No token');
  });

  it('accepts only FHIR R4 resource types, naming the unknown ones, on create and on change', async () => {
    const unknown = await post(adminA, orgA, {
      name: 'Typo',
      resourceTypes: ['Patient', 'Foo', 'Observaton', 'Foo'],
    }).expect(400);
    expect(unknown.body).toMatchObject({
      code: 'VALIDATION_FAILED',
      fields: {
        resourceTypes: [
          'resourceTypes names types that FHIR R4 does not define: Foo, Observaton. Use resource type names as FHIR R4 spells them, such as Patient or Observation (http://hl7.org/fhir/R4/resourcelist.html)',
        ],
      },
    });
    // One unknown type: named alone. A type of a later FHIR version (R5's
    // SubscriptionTopic) is not R4's either.
    const one = await post(adminA, orgA, { name: 'R5', resourceTypes: ['SubscriptionTopic'] }).expect(400);
    expect((one.body as { fields: Record<string, string[]> }).fields.resourceTypes).toEqual([
      expect.stringMatching(/^resourceTypes names a type that FHIR R4 does not define: SubscriptionTopic\./),
    ]);
    const names = ((await adminA.agent.get(path(orgA)).expect(200)).body as ApiKeyView[]).map((k) => k.name);
    expect(names).not.toContain('Typo');

    // Every R4 type, the rare ones included, is accepted; a change is checked the same way.
    const { key } = await createKey({
      resourceTypes: ['Patient', 'MedicinalProductUndesirableEffect', 'VisionPrescription', 'Binary'],
    });
    const changed = await patch(adminA, orgA, key.keyId, { resourceTypes: ['Patient', 'Foo'] }).expect(400);
    expect((changed.body as { fields: Record<string, string[]> }).fields.resourceTypes).toEqual([
      expect.stringMatching(/does not define: Foo\./),
    ]);
    const kept = await adminA.agent.get(path(orgA, key.keyId)).expect(200);
    expect((kept.body as ApiKeyView).resourceTypes).toEqual([
      'Patient',
      'MedicinalProductUndesirableEffect',
      'VisionPrescription',
      'Binary',
    ]);
  });

  it('answers invalid input in the one field-error shape', async () => {
    const res = await post(adminA, orgA, {
      name: '',
      access: 'write',
      resourceTypes: ['patient', 'Observation'],
      userConnections: 'yes',
      expiresAt: '2020-01-01',
      extra: 1,
    }).expect(400);
    const body = res.body as { fields: Record<string, string[]>; message: string[] };
    expect(Object.keys(body).sort()).toEqual(['code', 'fields', 'message', 'statusCode']);
    expect(body).toMatchObject({
      statusCode: 400,
      code: 'VALIDATION_FAILED',
      fields: {
        name: ['name must be 1 to 100 characters'],
        access: ['access must be read or read_write'],
        resourceTypes: [
          'each of resourceTypes must be a FHIR resource type name such as Patient or Observation',
        ],
        userConnections: ['userConnections must be true or false'],
        expiresAt: ['expiresAt must be in the future'],
        extra: ['property extra should not exist'],
      },
    });
    expect(body.message).toEqual(Object.values(body.fields).flat());

    const cases: [object, string, RegExp][] = [
      [{ name: 'x'.repeat(101) }, 'name', /1 to 100/],
      [{ name: 'a\u2028b' }, 'name', /single line/],
      [{ name: 'x', resourceTypes: [] }, 'resourceTypes', /at least one/],
      [{ name: 'x', resourceTypes: 'Patient' }, 'resourceTypes', /list/],
      [
        { name: 'x', resourceTypes: Array.from({ length: 101 }, (_, i) => `Type${'a'.repeat(i % 50)}`) },
        'resourceTypes',
        /at most 100/,
      ],
      [{ name: 'x', resourceTypes: ['P'] }, 'resourceTypes', /FHIR resource type/],
      [{ name: 'x', resourceTypes: [`P${'a'.repeat(64)}`] }, 'resourceTypes', /FHIR resource type/],
      [{ name: 'x', expiresAt: '2099-01-01T10:00' }, 'expiresAt', /offset/],
      [{ name: 'x', expiresAt: '2099-02-30' }, 'expiresAt', /valid date/],
      [{ name: 'x', expiresAt: 'tomorrow' }, 'expiresAt', /ISO 8601/],
      [{ name: 'x', userConnections: null }, 'userConnections', /true or false/],
      [{ name: null }, 'name', /1 to 100/],
    ];
    for (const [input, field, message] of cases) {
      const bad = await post(adminA, orgA, input).expect(400);
      expect(bad.body).toMatchObject({ code: 'VALIDATION_FAILED', fields: { [field]: expect.any(Array) } });
      expect((bad.body as { fields: Record<string, string[]> }).fields[field].join(' ')).toMatch(message);
    }
    // Control characters are refused before any handler (InputTextGuard), naming the field.
    const nul = await post(adminA, orgA, { name: 'a\u0000b' }).expect(400);
    expect(JSON.stringify(nul.body)).toContain('name');

    const { key } = await createKey();
    const nullName = await patch(adminA, orgA, key.keyId, { name: null, access: null }).expect(400);
    expect(Object.keys((nullName.body as { fields: object }).fields).sort()).toEqual(['access', 'name']);
    await patch(adminA, orgA, key.keyId, { secretHash: '0'.repeat(64) }).expect(400);
    const badId = await adminA.agent.get(path(orgA, 'NOT-A-KEY-ID')).expect(400);
    expect(badId.body).toMatchObject({ fields: { keyId: ['keyId must be 12 lowercase letters or digits'] } });
    await adminA.agent.get(path('not-a-uuid')).expect(404); // not their organization, whatever it is
    await rootAdmin.agent.get(path('not-a-uuid')).expect(400);
    const list = (await adminA.agent.get(path(orgA)).expect(200)).body as ApiKeyView[];
    expect(list.map((k) => k.name)).not.toContain('x');
  });

  it('validates a change with the rules of a create, every field optional, null cleared only where it means something', async () => {
    const { key } = await createKey({ name: 'Before', resourceTypes: ['Patient'], expiresAt: '2099-01-01' });
    const fieldsOf = async (body: object): Promise<Record<string, string[]>> =>
      ((await patch(adminA, orgA, key.keyId, body).expect(400)).body as { fields: Record<string, string[]> })
        .fields;

    // The create's rules and messages, field by field.
    expect(await fieldsOf({ name: '' })).toEqual({ name: ['name must be 1 to 100 characters'] });
    expect(await fieldsOf({ access: 'write' })).toEqual({ access: ['access must be read or read_write'] });
    expect(await fieldsOf({ resourceTypes: [] })).toEqual({
      resourceTypes: ['resourceTypes must name at least one resource type, or be null for all'],
    });
    expect(await fieldsOf({ expiresAt: '2020-01-01' })).toEqual({
      expiresAt: ['expiresAt must be in the future'],
    });
    expect(await fieldsOf({ extra: 1 })).toEqual({ extra: ['property extra should not exist'] });
    // null is a value to refuse where it means nothing (it would not be "keep").
    expect(Object.keys(await fieldsOf({ name: null, access: null, userConnections: null })).sort()).toEqual([
      'access',
      'name',
      'userConnections',
    ]);

    // An empty change changes nothing; absent fields are kept, the name trimmed like on create.
    const same = await patch(adminA, orgA, key.keyId, {}).expect(200);
    expect(same.body).toMatchObject({ name: 'Before', resourceTypes: ['Patient'], access: 'read' });
    const renamed = await patch(adminA, orgA, key.keyId, { name: '  After  ' }).expect(200);
    expect(renamed.body).toMatchObject({
      name: 'After',
      access: 'read',
      resourceTypes: ['Patient'],
      expiresAt: '2099-01-01T00:00:00.000Z',
    });
    // null clears resourceTypes (all) and expiresAt (never).
    const cleared = await patch(adminA, orgA, key.keyId, { resourceTypes: null, expiresAt: null }).expect(
      200,
    );
    expect(cleared.body).toMatchObject({ name: 'After', resourceTypes: null, expiresAt: null });
  });

  it('audits creating, changing and revoking with what the key may do, never the secret or its hash', async () => {
    const { key } = await createKey({
      name: 'Audited',
      access: 'read',
      resourceTypes: ['Patient'],
      expiresAt: '2099-12-31',
    });
    await patch(adminA, orgA, key.keyId, { access: 'read_write' }).expect(200);
    await revoke(adminA, orgA, key.keyId).expect(200);

    const events = (await adminA.agent.get(`/api/organizations/${orgA}/audit-events?limit=200`).expect(200))
      .body as { action: string; actor: string; organizationId: string; detail: Record<string, unknown> }[];
    const mine = events.filter((e) => e.detail.keyId === key.keyId).reverse();
    expect(mine.map((e) => e.action)).toEqual(['api-key.created', 'api-key.updated', 'api-key.revoked']);
    const detail = {
      keyId: key.keyId,
      name: 'Audited',
      resourceTypes: ['Patient'],
      userConnections: false,
      expiresAt: '2099-12-31T00:00:00.000Z',
    };
    expect(mine[0]).toMatchObject({ organizationId: orgA, detail: { ...detail, access: 'read' } });
    expect(mine[1]).toMatchObject({ detail: { ...detail, access: 'read_write', changed: ['access'] } });
    expect(mine[2]).toMatchObject({ detail: { ...detail, access: 'read_write' } });
    expect(new Set(mine.map((e) => e.actor)).size).toBe(1);

    const [{ trail }] = await t.dataSource.query<{ trail: string }[]>(
      `SELECT coalesce(string_agg(detail::text, ' '), '') AS trail FROM audit_event`,
    );
    for (const key of created) {
      expect(trail).not.toContain(secretPart(key));
      expect(trail).not.toContain(sha256(secretPart(key)));
    }
    expect(trail).toContain(key.keyId);
  });

  it('holds the cap of 100 keys that are not revoked exactly, even for creates that race', async () => {
    const org = (await new TestFactory(t).organization()).id;
    // 95 keys already (written directly: the cap counts rows, however they came), 2 of them revoked.
    await t.dataSource.query(
      `INSERT INTO api_key (organization_id, key_id, secret_hash, name, access, revoked_at)
       SELECT $1, substr(md5(random()::text || g), 1, 12), md5(random()::text) || md5(random()::text),
              'Filler ' || g, 'read', CASE WHEN g <= 2 THEN now() END
         FROM generate_series(1, 95) g`,
      [org],
    );
    const unrevoked = async (): Promise<number> =>
      Number(
        (
          await t.dataSource.query<{ n: string }[]>(
            'SELECT count(*) AS n FROM api_key WHERE organization_id = $1 AND revoked_at IS NULL',
            [org],
          )
        )[0].n,
      );
    expect(await unrevoked()).toBe(93);

    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => post(rootAdmin, org, { name: `Racing ${i}` })),
    );
    const statuses = answers.map((res) => res.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(7);
    expect(statuses.filter((s) => s === 409)).toHaveLength(13);
    for (const res of answers) {
      if (res.status === 201) created.push((res.body as CreatedApiKey).secret);
      else {
        expect(res.body).toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/at most 100/) });
      }
    }
    expect(await unrevoked()).toBe(100);

    // Revoking one makes room for exactly one.
    const [{ key_id: filler }] = await t.dataSource.query<{ key_id: string }[]>(
      `SELECT key_id FROM api_key WHERE organization_id = $1 AND revoked_at IS NULL AND name LIKE 'Filler %' LIMIT 1`,
      [org],
    );
    await revoke(rootAdmin, org, filler).expect(200);
    const again = await Promise.all([1, 2, 3].map((i) => post(rootAdmin, org, { name: `Again ${i}` })));
    expect(again.map((res) => res.status).sort()).toEqual([201, 409, 409]);
    for (const res of again) if (res.status === 201) created.push((res.body as CreatedApiKey).secret);
    expect(await unrevoked()).toBe(100);
  });

  it('deletes an organization’s keys with the organization', async () => {
    const doomed = (await new TestFactory(t).organization()).id;
    const { key } = await createKey({}, rootAdmin, doomed);
    await rootAdmin.agent
      .delete(`/api/organizations/${doomed}`)
      .set('x-csrf-token', rootAdmin.csrf)
      .expect(204);
    const rows = await t.dataSource.query<unknown[]>(`SELECT 1 FROM api_key WHERE key_id = $1`, [key.keyId]);
    expect(rows).toHaveLength(0);
  });

  it('never writes a key to the log, even one echoed in a message', async () => {
    const { key, secret } = await createKey({ name: 'Logged' });
    await sut.authenticate(secret);
    // Requests carrying the key where it does not belong: a header of another route, a field name.
    await adminA.agent.get(path(orgA)).set('Authorization', `Bearer ${secret}`).expect(200);
    await post(adminA, orgA, { name: 'x', [secret]: 1 }).expect(400);
    await refusal(`${secret}x`);
    new Logger('ApiKeysE2e').warn(`a message that quotes the key ${secret} by mistake`);

    const log = readFileSync(process.env.LOG_FILE!, 'utf8');
    expect(log).toContain(`a message that quotes the key ecgk_${key.keyId}_[redacted] by mistake`);
    for (const value of created) expect(log).not.toContain(secretPart(value));
  });
});
