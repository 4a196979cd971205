import { readFileSync } from 'node:fs';

import { getRepositoryToken } from '@nestjs/typeorm';
import { Repository } from 'typeorm';

import { ApiKeysService } from 'src/api-keys/api-keys.service';
import { ApiKey } from 'src/api-keys/entities/api-key.entity';
import type { ApiKeyPrincipal, CreatedApiKey } from 'src/api-keys/api-keys.types';
import { DomainError, ErrorCode } from 'src/common/errors/domain-error';
import { Role } from 'src/users/user.types';

import { signIn, TestFactory } from 'test/factories';
import { SignedIn } from 'test/factories/epic-connection';
import { freshDatabaseUrl } from 'test/setup/database';
import { createTestApp, TestApp } from 'test/setup/test-app';

/** The cache time of the instances here (API_KEY_CACHE_SECONDS), in ms. */
const CACHE_MS = 2000;
/** How late past the cache time a refusal may come (polling, a busy machine). */
const SLACK_MS = 400;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const keyIdOf = (key: string): string => /^ecgk_([a-z0-9]{12})_/.exec(key)![1];

/**
 * Several instances on one database, as in production: a key revoked on one instance is refused
 * there at once and on every other within API_KEY_CACHE_SECONDS; `last_used_at` is written at most
 * once a minute per key and instance, without the caller waiting.
 */
describe('API keys across instances', () => {
  let a: TestApp;
  let b: TestApp;
  let uncached: TestApp;
  let onA: ApiKeysService;
  let onB: ApiKeysService;
  let admin: SignedIn;
  let orgId: string;

  beforeAll(async () => {
    const databaseUrl = await freshDatabaseUrl();
    const env = { API_KEY_CACHE_SECONDS: String(CACHE_MS / 1000) };
    [a, b, uncached] = await Promise.all([
      createTestApp({ databaseUrl, env }),
      createTestApp({ databaseUrl, env }),
      createTestApp({ databaseUrl, env: { API_KEY_CACHE_SECONDS: '0' } }),
    ]);
    onA = a.app.get(ApiKeysService);
    onB = b.app.get(ApiKeysService);
    const factory = new TestFactory(a);
    orgId = (await factory.organization()).id;
    admin = await signIn(a, await factory.user(Role.OrgAdmin, orgId));
  });
  afterEach(() => jest.restoreAllMocks());
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close(), uncached?.close()]);
  });

  /** Counts the key reads of an instance (a spy: the real read still runs). */
  const readsOf = (t: TestApp): jest.SpyInstance =>
    jest.spyOn(t.app.get<Repository<ApiKey>>(getRepositoryToken(ApiKey)), 'findOneBy');

  /** Makes Date.now, which the key cache reads, return what the test says until restored. */
  function frozenClock(): { now: number; advance: (ms: number) => void } {
    const clock = { now: Date.now(), advance: (ms: number) => (clock.now += ms) };
    jest.spyOn(Date, 'now').mockImplementation(() => clock.now);
    return clock;
  }

  async function createKey(name: string): Promise<CreatedApiKey> {
    const res = await admin.agent
      .post(`/api/organizations/${orgId}/api-keys`)
      .set('x-csrf-token', admin.csrf)
      .send({ name })
      .expect(201);
    return res.body as CreatedApiKey;
  }

  const accepted = (sut: ApiKeysService, key: string): Promise<boolean> =>
    sut.authenticate(key).then(
      () => true,
      (error: unknown) => {
        if (error instanceof DomainError && error.code === ErrorCode.Unauthenticated) return false;
        throw error;
      },
    );

  const lastUsed = async (keyId: string): Promise<Date | null> => {
    const [row] = await a.dataSource.query<{ last_used_at: Date | null }[]>(
      'SELECT last_used_at FROM api_key WHERE key_id = $1',
      [keyId],
    );
    return row.last_used_at;
  };

  it('honours a revocation on the instance that made it at once, and on another within the cache time', async () => {
    const { key, secret } = await createKey('Revoked on A');
    expect(await accepted(onA, secret)).toBe(true);
    const readOnB = Date.now();
    expect(await accepted(onB, secret)).toBe(true);
    // Both now hold it in memory: a second use reads nothing.
    const [readsA, readsB] = [readsOf(a), readsOf(b)];
    expect(await accepted(onA, secret)).toBe(true);
    expect(await accepted(onB, secret)).toBe(true);
    expect(readsA).not.toHaveBeenCalled();
    expect(readsB).not.toHaveBeenCalled();

    await admin.agent
      .delete(`/api/organizations/${orgId}/api-keys/${key.keyId}`)
      .set('x-csrf-token', admin.csrf)
      .expect(200);
    // A forgot it: refused at once, from a fresh read of the row.
    expect(await accepted(onA, secret)).toBe(false);
    expect(readsA).toHaveBeenCalledTimes(1);

    // B refuses it within the cache time after its own read, when its memory of the key ends.
    let refusedAfter: number | undefined;
    while (Date.now() - readOnB < CACHE_MS + SLACK_MS) {
      if (!(await accepted(onB, secret))) {
        refusedAfter = Date.now() - readOnB;
        break;
      }
      await sleep(50);
    }
    expect(refusedAfter).toBeGreaterThan(0);
    expect(refusedAfter).toBeLessThan(CACHE_MS + SLACK_MS);
    expect(readsB).toHaveBeenCalled(); // refused from the row, not from memory
    // Refused for good from then on.
    expect(await accepted(onB, secret)).toBe(false);
    expect(await accepted(onA, secret)).toBe(false);
  });

  it('serves a cached key without the database until exactly the cache time after its read (a change made elsewhere)', async () => {
    const { key, secret } = await createKey('Revoked in the database');
    const clock = frozenClock(); // the cache's clock, so the bounds below are exact on any machine
    expect(await accepted(onB, secret)).toBe(true); // read at clock.now
    // What another instance's revocation leaves in the database.
    await a.dataSource.query('UPDATE api_key SET revoked_at = now() WHERE key_id = $1', [key.keyId]);
    const reads = readsOf(b);

    clock.advance(CACHE_MS - 1);
    expect(await accepted(onB, secret)).toBe(true); // from memory, the revocation unseen
    expect(reads).not.toHaveBeenCalled();

    clock.advance(1);
    expect(await accepted(onB, secret)).toBe(false); // the entry ended: the row is read again
    expect(reads).toHaveBeenCalledTimes(1);
    // The revoked row is remembered as revoked for the cache time: its holder costs no more reads.
    expect(await accepted(onB, secret)).toBe(false);
    expect(reads).toHaveBeenCalledTimes(1);
    clock.advance(CACHE_MS);
    expect(await accepted(onB, secret)).toBe(false);
    expect(reads).toHaveBeenCalledTimes(2);
  });

  it('reads the row on every request with API_KEY_CACHE_SECONDS=0', async () => {
    const { key, secret } = await createKey('Never cached');
    const sut = uncached.app.get(ApiKeysService);
    const reads = readsOf(uncached);
    expect(await accepted(sut, secret)).toBe(true);
    expect(await accepted(sut, secret)).toBe(true);
    expect(reads).toHaveBeenCalledTimes(2);
    await a.dataSource.query('UPDATE api_key SET revoked_at = now() WHERE key_id = $1', [key.keyId]);
    expect(await accepted(sut, secret)).toBe(false);
    expect(reads).toHaveBeenCalledTimes(3);
  });

  it('shares one database read among concurrent requests with the same key', async () => {
    const { secret } = await createKey('Burst');
    const sut = uncached.app.get(ApiKeysService); // nothing cached: every burst reads
    const reads = readsOf(uncached);
    const results = await Promise.all(Array.from({ length: 50 }, () => sut.authenticate(secret)));
    expect(reads).toHaveBeenCalledTimes(1);
    expect(results.every((p) => p.keyId === keyIdOf(secret) && p.organizationId === orgId)).toBe(true);
    expect(new Set(results).size).toBe(50); // 50 objects, not one shared
    // The shared read ended with the burst: the next burst reads again (nothing cached here).
    await Promise.all([sut.authenticate(secret), sut.authenticate(secret)]);
    expect(reads).toHaveBeenCalledTimes(2);
    // Each caller gets its own copy: changing one changes no other, nor what the next call gets.
    results[0].resourceTypes = ['Patient'];
    expect(results[1].resourceTypes).toBeNull();
    expect((await sut.authenticate(secret)).resourceTypes).toBeNull();
  });

  it('records the last use at most once a minute per instance, without waiting and without throwing', async () => {
    const { key, secret } = await createKey('Used');
    const principal: ApiKeyPrincipal = await onA.authenticate(secret);

    // Without waiting: with the row locked by another transaction the write cannot land, yet the
    // call has returned (nothing to await) and the write lands once the lock is gone.
    const locker = a.dataSource.createQueryRunner();
    await locker.connect();
    await locker.startTransaction();
    let first: Date | null = null;
    try {
      await locker.query('SELECT 1 FROM api_key WHERE key_id = $1 FOR UPDATE', [key.keyId]);
      const calledAt = Date.now();
      expect(onA.recordUse(principal)).toBeUndefined();
      expect(Date.now() - calledAt).toBeLessThan(50);
      await sleep(200);
      expect(await lastUsed(key.keyId)).toBeNull(); // still waiting for the lock
    } finally {
      await locker.commitTransaction();
      await locker.release();
    }
    for (let i = 0; i < 40 && !first; i++) {
      await sleep(50);
      first = await lastUsed(key.keyId);
    }
    expect(first).toBeInstanceOf(Date);

    onA.recordUse(principal); // within the minute on A: no write
    await sleep(300);
    expect((await lastUsed(key.keyId))!.getTime()).toBe(first!.getTime());

    onB.recordUse(await onB.authenticate(secret)); // B has not written yet: it does
    let second = first;
    for (let i = 0; i < 40 && second!.getTime() === first!.getTime(); i++) {
      await sleep(50);
      second = await lastUsed(key.keyId);
    }
    expect(second!.getTime()).toBeGreaterThan(first!.getTime());

    const shown = await admin.agent.get(`/api/organizations/${orgId}/api-keys/${key.keyId}`).expect(200);
    expect(shown.body).toMatchObject({ lastUsedAt: second!.toISOString() });

    // A key that no longer exists: nothing thrown, nothing written.
    const usedBefore = await a.dataSource.query<{ n: string }[]>(
      'SELECT count(*) AS n FROM api_key WHERE last_used_at IS NOT NULL',
    );
    expect(() => onA.recordUse({ ...principal, keyId: 'zzzzzzzzzzzz' })).not.toThrow();
    // A write the database fails (a NUL byte PostgreSQL refuses in text), and nonsense: logged as a
    // warning, never thrown, and no unhandled rejection (Jest would fail the file).
    const marker = `nul${Date.now()}`;
    expect(() => onA.recordUse({ ...principal, keyId: `\u0000${marker}` })).not.toThrow();
    expect(() => onA.recordUse(null as unknown as ApiKeyPrincipal)).not.toThrow();
    let warned = false;
    for (let i = 0; i < 40 && !warned; i++) {
      await sleep(50);
      warned = readFileSync(process.env.LOG_FILE!, 'utf8')
        .split('\n')
        .some((line) => line.includes(marker) && line.includes('Could not record the use of an API key'));
    }
    expect(warned).toBe(true);
    expect(
      await a.dataSource.query<{ n: string }[]>(
        'SELECT count(*) AS n FROM api_key WHERE last_used_at IS NOT NULL',
      ),
    ).toEqual(usedBefore);
  });
});
