import { Role } from 'src/users/user.types';

import { signIn, TestFactory } from 'test/factories';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { freshDatabaseUrl } from 'test/setup/database';
import { createTestApp, TestApp } from 'test/setup/test-app';

import { createApiKey, gatewayOrganization, issueOf } from '../gateway/gateway-harness';

/** The cache time of the other cached instance (API_KEY_CACHE_SECONDS), in ms. */
const CACHE_MS = 1000;
/**
 * The deleting instance's cache time: far longer than the test, so only the deletion event can make
 * it refuse the key at once.
 */
const DELETING_CACHE_SECONDS = 60;
/** How late past the cache time a refusal may come (polling, a busy machine). */
const SLACK_MS = 500;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Deleting an organization ends its API keys: the rows go with it (ON DELETE CASCADE), so no
 * instance can read them again. The deleting instance hears `organizations.deleted` and forgets the
 * organization's keys at once; another instance that holds a key in memory refuses it within
 * API_KEY_CACHE_SECONDS, the same window as a revocation made elsewhere. Through the gateway.
 */
describe('API keys of a deleted organization', () => {
  let deleting: TestApp;
  let cached: TestApp;
  let uncached: TestApp;
  let epic: FakeEpic;
  let root: { agent: ReturnType<TestApp['agent']>; csrf: string };

  beforeAll(async () => {
    const databaseUrl = await freshDatabaseUrl();
    [deleting, cached, uncached, epic] = await Promise.all([
      createTestApp({ databaseUrl, env: { API_KEY_CACHE_SECONDS: String(DELETING_CACHE_SECONDS) } }),
      createTestApp({ databaseUrl, env: { API_KEY_CACHE_SECONDS: String(CACHE_MS / 1000) } }),
      createTestApp({ databaseUrl, env: { API_KEY_CACHE_SECONDS: '0' } }),
      startFakeEpic(),
    ]);
    root = await signIn(deleting, await new TestFactory(deleting).user(Role.RootAdmin, null));
  });
  afterAll(async () => {
    await epic.close();
    await Promise.all([deleting?.close(), cached?.close(), uncached?.close()]);
  });

  const read = (t: TestApp, base: string, key: string) =>
    t.http().get(`${base}/Patient/${SEED.camila}`).set('Authorization', `Bearer ${key}`);

  it('deletes the keys with the organization: refused at once where deleted, elsewhere within the cache time', async () => {
    const org = await gatewayOrganization(deleting, epic);
    const { key, secret } = await createApiKey(org);
    const otherOrg = await gatewayOrganization(deleting, epic);
    const other = await createApiKey(otherOrg);
    // Every instance serves them; the cached ones now hold them in memory.
    for (const t of [deleting, cached, uncached]) await read(t, org.base, secret).expect(200);
    await read(deleting, otherOrg.base, other.secret).expect(200);

    await root.agent.delete(`/api/organizations/${org.orgId}`).set('x-csrf-token', root.csrf).expect(204);
    const deletedAt = Date.now();
    const fhirCalls = epic.calls('fhir');

    // The instance that deleted it forgot its keys with the deletion: refused at once, although
    // its cache would keep them for a minute, with the one answer for a key that does not exist.
    const atOnce = await read(deleting, org.base, secret).expect(401);
    expect(issueOf(atOnce.body)).toMatchObject({ code: 'login' });
    // Another organization's key, cached there too, is not forgotten.
    await read(deleting, otherOrg.base, other.secret).expect(200);
    const fhirCallsAfter = epic.calls('fhir');

    const rows = await deleting.dataSource.query<unknown[]>(
      'SELECT 1 FROM api_key WHERE key_id = $1 OR organization_id = $2',
      [key.keyId, org.orgId],
    );
    expect(rows).toHaveLength(0);

    // Without a cache: refused at once.
    const refused = await read(uncached, org.base, secret).expect(401);
    expect(issueOf(refused.body)).toMatchObject({ code: 'login' });

    // Another instance with a cache (it heard no event): refused within the cache time, and never
    // served by the server meanwhile.
    let refusedAfter: number | undefined;
    while (Date.now() - deletedAt < CACHE_MS + SLACK_MS) {
      const res = await read(cached, org.base, secret);
      expect(res.status).not.toBe(200);
      if (res.status === 401) {
        refusedAfter = Date.now() - deletedAt;
        break;
      }
      await sleep(50);
    }
    expect(refusedAfter).toBeDefined();
    await read(cached, org.base, secret).expect(401);
    await read(deleting, org.base, secret).expect(401);
    expect(epic.calls('fhir') - fhirCallsAfter).toBe(0);
    expect(fhirCallsAfter - fhirCalls).toBe(1); // only the other organization's read
  });
});
