import { getRepositoryToken } from '@nestjs/typeorm';
import { Repository } from 'typeorm';

import { ApiKey } from 'src/api-keys/entities/api-key.entity';

import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

import {
  createApiKey,
  gatewayOrganization,
  GatewayOrganization,
  issueOf,
  revokeApiKey,
} from './gateway-harness';

const LIMIT = 3;
const WINDOW_SECONDS = 2;
const UNKNOWN_KEY = 'ecgk_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The same key with another (wrong) secret of the right shape. */
const wrongSecret = (presented: string): string => {
  const at = presented.length - 43; // the secret's first character
  return `${presented.slice(0, at)}${presented[at] === 'A' ? 'B' : 'A'}${presented.slice(at + 1)}`;
};

/**
 * The brake on bad keys: a client (its address; behind a proxy, X-Forwarded-For with TRUST_PROXY)
 * that presented API_KEY_FAILURE_LIMIT guessed keys (malformed, unknown, wrong secret) within the
 * window is answered 429 with Retry-After until the window ends, for any key not held in memory
 * (none is here: API_KEY_CACHE_SECONDS=0) and without a database read; a malformed key is refused on
 * its shape alone; a client that succeeds pays nothing; the right secret of a revoked or expired key
 * is refused but not counted (key rotation behind one address).
 */
describe('FHIR gateway: refused API keys per client', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let org: GatewayOrganization;
  let key: string;
  let reads: jest.SpyInstance;
  let clients = 0;

  beforeAll(async () => {
    [t, epic] = await Promise.all([
      createTestApp({
        env: {
          TRUST_PROXY: 'true',
          API_KEY_FAILURE_LIMIT: String(LIMIT),
          API_KEY_FAILURE_WINDOW_SECONDS: String(WINDOW_SECONDS),
          API_KEY_CACHE_SECONDS: '0', // every accepted key is read: the reads below are all there are
        },
      }),
      startFakeEpic(),
    ]);
    org = await gatewayOrganization(t, epic);
    key = (await createApiKey(org)).secret;
    reads = jest.spyOn(t.app.get<Repository<ApiKey>>(getRepositoryToken(ApiKey)), 'findOneBy');
  });
  beforeEach(() => reads.mockClear());
  afterAll(async () => {
    reads.mockRestore();
    await epic.close();
    await t.close();
  });

  /** A client address no other test used. */
  const newClient = (): string => `203.0.113.${++clients}`;
  const read = (client: string, presented?: string) => {
    const req = t.http().get(`${org.base}/Patient/${SEED.camila}`).set('X-Forwarded-For', client);
    return presented === undefined ? req : req.set('Authorization', `Bearer ${presented}`);
  };
  async function expectTurnedAway(client: string, presented?: string): Promise<number> {
    const res = await read(client, presented).expect(429);
    expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
    expect(issueOf(res.body)).toMatchObject({
      severity: 'error',
      code: 'throttled',
      details: { coding: [{ system: 'urn:epic-connect:error-code', code: 'RATE_LIMITED' }] },
      diagnostics: expect.stringMatching(/API key that is not valid/),
    });
    const retryAfter = Number(res.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(WINDOW_SECONDS);
    return retryAfter;
  }

  it('turns a client away after the limit with 429 and Retry-After, whatever key it sends, without a read', async () => {
    const client = newClient();
    for (let i = 0; i < LIMIT; i++) await read(client, UNKNOWN_KEY).expect(401);
    expect(reads).toHaveBeenCalledTimes(LIMIT); // each unknown key cost its read
    reads.mockClear();
    const fhirCalls = epic.calls('fhir');

    await expectTurnedAway(client, UNKNOWN_KEY);
    await expectTurnedAway(client, key); // a valid key too: the client is what is limited
    await expectTurnedAway(client, 'not-a-key');
    expect(reads).not.toHaveBeenCalled();
    expect(epic.calls('fhir')).toBe(fhirCalls);

    // Another client with the same key is served.
    await read(newClient(), key).expect(200);
  });

  it('serves the client again once its window has ended', async () => {
    const client = newClient();
    for (let i = 0; i < LIMIT; i++) await read(client, UNKNOWN_KEY).expect(401);
    const retryAfter = await expectTurnedAway(client, key);
    await sleep(retryAfter * 1000 + 100);
    const res = await read(client, key).expect(200);
    expect(res.body).toMatchObject({ resourceType: 'Patient', id: SEED.camila });
    // The new window starts from nothing: one refusal is a 401 again.
    await read(client, UNKNOWN_KEY).expect(401);
  });

  it('refuses a malformed key on its shape alone (no read), and counts it', async () => {
    const client = newClient();
    const malformed = [
      'not-a-key',
      `ghpk_000000000000_${'A'.repeat(43)}`, // another prefix, same length
      `ecgk_00000000000A_${'A'.repeat(43)}`, // an upper-case key id
      `${UNKNOWN_KEY}A`, // one character too long
    ];
    for (const presented of malformed.slice(0, LIMIT)) {
      const res = await read(client, presented).expect(401);
      expect(issueOf(res.body)).toMatchObject({ code: 'login' });
    }
    await expectTurnedAway(client, malformed[LIMIT]);
    expect(reads).not.toHaveBeenCalled();
  });

  it('counts an IPv6 client by its /64', async () => {
    for (let i = 1; i <= LIMIT; i++) await read(`2001:db8:0:7::${i}`, UNKNOWN_KEY).expect(401);
    await expectTurnedAway('2001:db8:0:7::ffff', key);
    await read('2001:db8:0:8::1', key).expect(200);
  });

  it('counts neither accepted keys nor requests without a key', async () => {
    const client = newClient();
    for (let i = 0; i < LIMIT + 2; i++) await read(client, key).expect(200);
    for (let i = 0; i < LIMIT + 2; i++) await read(client).expect(401);
    for (let i = 0; i < LIMIT - 1; i++) await read(client, UNKNOWN_KEY).expect(401);
    await read(client, key).expect(200);
  });

  it('does not count the right secret of a revoked or expired key: rotation behind one address', async () => {
    const client = newClient();
    const old = await createApiKey(org);
    const expiring = await createApiKey(org);
    const fresh = await createApiKey(org);
    await read(client, old.secret).expect(200);
    await revokeApiKey(org, old.key.keyId);
    await t.dataSource.query(
      `UPDATE api_key SET expires_at = now() - interval '1 minute' WHERE key_id = $1`,
      [expiring.key.keyId],
    );
    // Workers not yet given the new key keep sending the old ones, well past the limit.
    for (let i = 0; i < LIMIT * 2; i++) {
      const res = await read(client, i % 2 ? old.secret : expiring.secret).expect(401);
      expect(issueOf(res.body)).toMatchObject({ code: 'login' });
    }
    // The updated workers behind the same address are served.
    await read(client, fresh.secret).expect(200);
  });

  it('still counts a wrong secret, also for a key id that exists (guessing blocks)', async () => {
    const client = newClient();
    const revoked = await createApiKey(org);
    await revokeApiKey(org, revoked.key.keyId);
    await read(client, wrongSecret(key)).expect(401);
    await read(client, wrongSecret(revoked.secret)).expect(401);
    await read(client, UNKNOWN_KEY).expect(401);
    await expectTurnedAway(client, key);
  });
});
