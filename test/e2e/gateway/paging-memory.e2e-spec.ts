import { PagingMemory } from 'src/gateway/paging-links';

import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { freshDatabaseUrl } from 'test/setup/database';
import { bootTestApp, TestApp } from 'test/setup/test-app';

import { createApiKey, gatewayOrganization, GatewayOrganization } from './gateway-harness';

/** PUBLIC_BASE_URL in tests: the gateway base in rewritten URLs. */
const PUBLIC = 'http://localhost:3000';

interface Page {
  link: { relation: string; url: string }[];
}

/** The memory of paging links is bounded per key: one key's flood of searches forgets only its own. */
describe('FHIR gateway: paging memory per key', () => {
  const PER_KEY = 3;
  let t: TestApp;
  let epic: FakeEpic;
  let org: GatewayOrganization;

  beforeAll(async () => {
    const databaseUrl = await freshDatabaseUrl();
    epic = await startFakeEpic({ pagingLinks: 'getpages' });
    // The real memory with small bounds, so a flood takes a few requests, not thousands.
    t = await bootTestApp({
      env: { DATABASE_URL: databaseUrl, MIGRATIONS_RUN: 'false' },
      override: (builder) =>
        builder
          .overrideProvider(PagingMemory)
          .useValue(new PagingMemory({ ttlMs: 60_000, maxEntries: 10 * PER_KEY, maxPerKey: PER_KEY })),
    });
    org = await gatewayOrganization(t, epic);
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });

  const get = (path: string, key: string) => t.http().get(path).set('Authorization', `Bearer ${key}`);
  const nextOf = (page: Page) => page.link.find((link) => link.relation === 'next')!.url.slice(PUBLIC.length);
  const search = async (key: string) =>
    nextOf(
      (await get(`${org.base}/Observation?patient=${SEED.camila}&_count=2`, key).expect(200)).body as Page,
    );

  it("does not evict another key's links, and forgets the flooding key's oldest", async () => {
    const quiet = (await createApiKey(org, { resourceTypes: ['Observation'] })).secret;
    const flood = (await createApiKey(org, { resourceTypes: ['Observation'] })).secret;
    const kept = await search(quiet);
    const first = await search(flood);
    for (let i = 0; i < 12 * PER_KEY; i++) await search(flood);
    await get(kept, quiet).expect(200);
    await get(first, flood).expect(403);
    await get(await search(flood), flood).expect(200);
  });
});
