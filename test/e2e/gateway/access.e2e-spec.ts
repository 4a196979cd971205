import { createApiKey, revokeApiKey } from 'test/factories/api-keys';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

import { gatewayOrganization, GatewayOrganization, issueOf, providerLaunch } from './gateway-harness';

/**
 * Who may do what through the gateway: the API key authenticates (401 otherwise, with a Bearer
 * challenge), belongs to the organization of the URL (403 otherwise, the same for one that does not
 * exist), and its access, resource types and user-connection permission decide the rest (403).
 */
describe('FHIR gateway: API keys and permissions', () => {
  let t: TestApp;
  let epicA: FakeEpic;
  let epicB: FakeEpic;
  let orgA: GatewayOrganization;
  let orgB: GatewayOrganization;

  beforeAll(async () => {
    [t, epicA, epicB] = await Promise.all([createTestApp(), startFakeEpic(), startFakeEpic()]);
    [orgA, orgB] = await Promise.all([gatewayOrganization(t, epicA), gatewayOrganization(t, epicB)]);
  });
  afterAll(async () => {
    await Promise.all([epicA.close(), epicB.close()]);
    await t.close();
  });

  const request = (
    method: 'get' | 'post' | 'put' | 'delete',
    org: GatewayOrganization,
    path: string,
    key?: string,
  ) => {
    const req = t.http()[method](`${org.base}${path}`);
    return key === undefined ? req : req.set('Authorization', `Bearer ${key}`);
  };
  const patient = JSON.stringify({ resourceType: 'Patient', gender: 'unknown' });

  describe('authentication', () => {
    it.each([
      ['no Authorization header', undefined, 'Bearer'],
      ['a malformed key', 'not-a-key', 'Bearer error="invalid_token"'],
      [
        'an unknown key',
        'ecgk_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
        'Bearer error="invalid_token"',
      ],
    ])('answers %s with 401, a Bearer challenge and an OperationOutcome', async (_case, key, challenge) => {
      const before = epicA.calls('fhir');
      const res = await request('get', orgA, `/Patient/${SEED.camila}`, key).expect(401);
      expect(res.headers['www-authenticate']).toBe(challenge);
      expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
      expect(issueOf(res.body)).toMatchObject({ severity: 'error', code: 'login' });
      expect(epicA.calls('fhir')).toBe(before);
    });

    it('refuses a revoked key at once, and an expired one', async () => {
      const { key, secret } = await createApiKey(orgA);
      await request('get', orgA, `/Patient/${SEED.camila}`, secret).expect(200);
      await revokeApiKey(orgA, key.keyId);
      const revoked = await request('get', orgA, `/Patient/${SEED.camila}`, secret).expect(401);
      expect(issueOf(revoked.body).code).toBe('login');

      const soon = await createApiKey(orgA, { expiresAt: new Date(Date.now() + 1500).toISOString() });
      await request('get', orgA, `/Patient/${SEED.camila}`, soon.secret).expect(200);
      await new Promise((resolve) => setTimeout(resolve, 1600));
      await request('get', orgA, `/Patient/${SEED.camila}`, soon.secret).expect(401);
    });

    it("answers another organization's key and an organization that does not exist alike (403)", async () => {
      const { secret } = await createApiKey(orgB, { access: 'read_write' });
      const before = epicA.calls('fhir');
      const foreign = await request('get', orgA, `/Patient/${SEED.camila}`, secret).expect(403);
      const unknown = await t
        .http()
        .get(`/gateway/no-such-org/fhir/Patient/${SEED.camila}`)
        .set('Authorization', `Bearer ${secret}`)
        .expect(403);
      const strip = (text: string, slug: string) => text.replace(slug, 'SLUG');
      expect(strip(foreign.text, orgA.slug)).toBe(strip(unknown.text, 'no-such-org'));
      expect(issueOf(foreign.body).code).toBe('forbidden');
      expect(epicA.calls('fhir')).toBe(before);
    });

    it('records the use of the key', async () => {
      const { key, secret } = await createApiKey(orgA);
      expect(key.lastUsedAt).toBeNull();
      await request('get', orgA, '/metadata', secret).expect(200);
      const res = await orgA.admin.agent
        .get(`/api/organizations/${orgA.orgId}/api-keys/${key.keyId}`)
        .expect(200);
      expect((res.body as { lastUsedAt: string | null }).lastUsedAt).not.toBeNull();
    });
  });

  describe('access', () => {
    it('lets a read key read, search and POST _search, and refuses its writes with 403 before Epic sees them', async () => {
      const { secret } = await createApiKey(orgA, { access: 'read' });
      await request('get', orgA, `/Patient/${SEED.camila}`, secret).expect(200);
      await request('get', orgA, `/Observation?patient=${SEED.camila}`, secret).expect(200);
      await request('post', orgA, '/Observation/_search', secret)
        .type('form')
        .send({ patient: SEED.camila })
        .expect(200);
      const before = epicA.calls('fhir');
      for (const [method, path] of [
        ['post', '/Patient'],
        ['put', `/Patient/${SEED.camila}`],
        ['delete', `/Patient/${SEED.camila}`],
        ['post', ''],
      ] as const) {
        const res = await request(method, orgA, path, secret)
          .set('Content-Type', 'application/fhir+json')
          .send(patient)
          .expect(403);
        expect(issueOf(res.body)).toMatchObject({
          code: 'forbidden',
          diagnostics: expect.stringContaining('read_write'),
        });
      }
      expect(epicA.calls('fhir')).toBe(before);
    });

    it('lets a read_write key write', async () => {
      const { secret } = await createApiKey(orgA, { access: 'read_write' });
      await request('post', orgA, '/Patient', secret)
        .set('Content-Type', 'application/fhir+json')
        .send(patient)
        .expect(201);
    });

    it('holds a key with a resource-type allow-list to those types (metadata always)', async () => {
      const { secret } = await createApiKey(orgA, { access: 'read_write', resourceTypes: ['Patient'] });
      await request('get', orgA, `/Patient/${SEED.camila}`, secret).expect(200);
      await request('get', orgA, '/metadata', secret).expect(200);
      await request('post', orgA, '/Patient', secret)
        .set('Content-Type', 'application/fhir+json')
        .send(patient)
        .expect(201);
      const before = epicA.calls('fhir');
      const refused = await request('get', orgA, `/Observation?patient=${SEED.camila}`, secret).expect(403);
      expect(issueOf(refused.body).diagnostics).toContain('Observation');
      // What may touch any type: the base (batch, transaction), whole-system search and history.
      await request('post', orgA, '', secret)
        .set('Content-Type', 'application/fhir+json')
        .send('{}')
        .expect(403);
      await request('get', orgA, '/_history', secret).expect(403);
      await request('post', orgA, '/_search', secret).type('form').send({ _type: 'Patient' }).expect(403);
      // Types an answer would include, in the query or in a _search form.
      await request('get', orgA, '/Patient?_revinclude=Observation:patient', secret).expect(403);
      await request('post', orgA, '/Patient/_search', secret)
        .type('form')
        .send({ _revinclude: 'Observation:patient' })
        .expect(403);
      expect(epicA.calls('fhir')).toBe(before);
    });

    it('refuses methods outside the FHIR API with 405, and a path that is not FHIR with 400', async () => {
      const { secret } = await createApiKey(orgA, { access: 'read_write' });
      const res = await t
        .http()
        .options(`${orgA.base}/Patient`)
        .set('Authorization', `Bearer ${secret}`)
        .expect(405);
      expect(issueOf(res.body).code).toBe('not-supported');
      const bad = await request('get', orgA, '/Patient/a%2F..%2Fb', secret).expect(400);
      expect(issueOf(bad.body).code).toBe('invalid');
    });
  });

  describe("users' own connections (X-Epic-Connect-User)", () => {
    let providerA: { userId: string; credentialId: string };
    let providerB: { userId: string; credentialId: string };

    beforeAll(async () => {
      providerA = await providerLaunch(t, epicA, orgA);
      providerB = await providerLaunch(t, epicB, orgB);
    });

    it("uses the user's own connection, with a key allowed to", async () => {
      const { secret } = await createApiKey(orgA, { userConnections: true });
      await request('get', orgA, `/Patient/${SEED.camila}`, secret).expect(200);
      const organizationToken = epicA.requests('fhir').at(-1)!.headers.authorization;
      await request('get', orgA, `/Patient/${SEED.camila}`, secret)
        .set('X-Epic-Connect-User', providerA.userId)
        .expect(200);
      const userToken = epicA.requests('fhir').at(-1)!.headers.authorization;
      expect(userToken).not.toBe(organizationToken);
      expect(epicA.inspectToken(String(userToken).slice('Bearer '.length))).toMatchObject({ active: true });
      const [{ last_sync }] = await t.dataSource.query<{ last_sync: Date | null }[]>(
        'SELECT last_sync FROM epic_credential WHERE id = $1',
        [providerA.credentialId],
      );
      expect(last_sync).not.toBeNull();
    });

    it('refuses the header for a key without the permission (403)', async () => {
      const { secret } = await createApiKey(orgA);
      const res = await request('get', orgA, `/Patient/${SEED.camila}`, secret)
        .set('X-Epic-Connect-User', providerA.userId)
        .expect(403);
      expect(issueOf(res.body).diagnostics).toContain('X-Epic-Connect-User');
    });

    it("never uses another organization's user, and says so as for an unknown one (403)", async () => {
      const { secret } = await createApiKey(orgA, { userConnections: true });
      const before = epicA.calls('fhir') + epicB.calls('fhir');
      const foreign = await request('get', orgA, `/Patient/${SEED.camila}`, secret)
        .set('X-Epic-Connect-User', providerB.userId)
        .expect(403);
      const unknown = await request('get', orgA, `/Patient/${SEED.camila}`, secret)
        .set('X-Epic-Connect-User', '00000000-0000-4000-8000-000000000000')
        .expect(403);
      expect(issueOf(foreign.body).diagnostics.replace(providerB.userId, 'X')).toBe(
        issueOf(unknown.body).diagnostics.replace('00000000-0000-4000-8000-000000000000', 'X'),
      );
      await request('get', orgA, `/Patient/${SEED.camila}`, secret)
        .set('X-Epic-Connect-User', 'nobody')
        .expect(400);
      expect(epicA.calls('fhir') + epicB.calls('fhir')).toBe(before);
    });
  });
});
