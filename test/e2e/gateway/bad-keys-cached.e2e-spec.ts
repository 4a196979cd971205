import { getRepositoryToken } from '@nestjs/typeorm';
import { Repository } from 'typeorm';

import { ApiKey } from 'src/api-keys/entities/api-key.entity';

import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

import { createApiKey, gatewayOrganization, GatewayOrganization, revokeApiKey } from './gateway-harness';

const LIMIT = 3;
const UNKNOWN_KEY = 'ecgk_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

/** The same key with another (wrong) secret of the right shape. */
const wrongSecret = (presented: string): string => {
  const at = presented.length - 43; // the secret's first character
  return `${presented.slice(0, at)}${presented[at] === 'A' ? 'B' : 'A'}${presented.slice(at + 1)}`;
};

/** With API_KEY_CACHE_SECONDS: what a blocked client may still do, and what a revoked key costs. */
describe('FHIR gateway: refused API keys per client, with verified keys in memory', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let org: GatewayOrganization;
  let reads: jest.SpyInstance;

  beforeAll(async () => {
    [t, epic] = await Promise.all([
      createTestApp({
        env: {
          TRUST_PROXY: 'true',
          API_KEY_FAILURE_LIMIT: String(LIMIT),
          API_KEY_FAILURE_WINDOW_SECONDS: '60',
          API_KEY_CACHE_SECONDS: '60',
        },
      }),
      startFakeEpic(),
    ]);
    org = await gatewayOrganization(t, epic);
    reads = jest.spyOn(t.app.get<Repository<ApiKey>>(getRepositoryToken(ApiKey)), 'findOneBy');
  });
  beforeEach(() => reads.mockClear());
  afterAll(async () => {
    reads.mockRestore();
    await epic.close();
    await t.close();
  });

  const read = (client: string, presented: string) =>
    t
      .http()
      .get(`${org.base}/Patient/${SEED.camila}`)
      .set('X-Forwarded-For', client)
      .set('Authorization', `Bearer ${presented}`);

  it('serves a blocked client a key verified recently, without a read; any other key gets 429', async () => {
    const client = '198.51.100.1';
    const known = (await createApiKey(org)).secret;
    const notYetSeen = (await createApiKey(org)).secret;
    await read(client, known).expect(200);
    for (let i = 0; i < LIMIT; i++) await read(client, UNKNOWN_KEY).expect(401);
    reads.mockClear();

    const res = await read(client, known).expect(200);
    expect(res.body).toMatchObject({ resourceType: 'Patient', id: SEED.camila });
    await read(client, UNKNOWN_KEY).expect(429);
    await read(client, wrongSecret(known)).expect(429); // the cached key id with another secret
    await read(client, notYetSeen).expect(429); // not in memory: it would cost a read
    expect(reads).not.toHaveBeenCalled();
  });

  it('refuses a revoked key from memory after one read, and never counts it', async () => {
    const client = '198.51.100.2';
    const old = await createApiKey(org);
    await read(client, old.secret).expect(200);
    await revokeApiKey(org, old.key.keyId);
    reads.mockClear();
    for (let i = 0; i < LIMIT + 2; i++) await read(client, old.secret).expect(401);
    expect(reads).toHaveBeenCalledTimes(1);
    await read(client, (await createApiKey(org)).secret).expect(200);
  });
});
