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
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close(), uncached?.close()]);
  });

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
    expect(await accepted(onB, secret)).toBe(true); // B now holds it in memory

    const revokedAt = Date.now();
    await admin.agent
      .delete(`/api/organizations/${orgId}/api-keys/${key.keyId}`)
      .set('x-csrf-token', admin.csrf)
      .expect(200);
    expect(await accepted(onA, secret)).toBe(false);

    let refusedAfter: number | undefined;
    while (Date.now() - revokedAt < CACHE_MS + SLACK_MS) {
      if (!(await accepted(onB, secret))) {
        refusedAfter = Date.now() - revokedAt;
        break;
      }
      await sleep(50);
    }
    expect(refusedAfter).toBeDefined();
    // Refused for good from then on.
    expect(await accepted(onB, secret)).toBe(false);
    expect(await accepted(onA, secret)).toBe(false);
  });

  it('serves a cached key without the database for at most the cache time (a change made elsewhere)', async () => {
    const { key, secret } = await createKey('Revoked in the database');
    expect(await accepted(onB, secret)).toBe(true);
    const readAt = Date.now();
    // What another instance's revocation leaves in the database.
    await a.dataSource.query('UPDATE api_key SET revoked_at = now() WHERE key_id = $1', [key.keyId]);
    const stillServed = await accepted(onB, secret);
    const checkedAt = Date.now();
    // From memory, as long as the cache time has not passed since the read (on a very slow machine it may have).
    if (checkedAt - readAt < CACHE_MS - 200) expect(stillServed).toBe(true);
    await sleep(Math.max(0, readAt + CACHE_MS - Date.now()) + 50);
    expect(await accepted(onB, secret)).toBe(false);
  });

  it('reads the row on every request with API_KEY_CACHE_SECONDS=0', async () => {
    const { key, secret } = await createKey('Never cached');
    const sut = uncached.app.get(ApiKeysService);
    expect(await accepted(sut, secret)).toBe(true);
    await a.dataSource.query('UPDATE api_key SET revoked_at = now() WHERE key_id = $1', [key.keyId]);
    expect(await accepted(sut, secret)).toBe(false);
  });

  it('shares one database read among concurrent requests with the same key', async () => {
    const { secret } = await createKey('Burst');
    const sut = uncached.app.get(ApiKeysService); // nothing cached: every burst reads
    const reads = jest.spyOn(uncached.app.get<Repository<ApiKey>>(getRepositoryToken(ApiKey)), 'findOneBy');
    const results = await Promise.all(Array.from({ length: 50 }, () => sut.authenticate(secret)));
    expect(reads).toHaveBeenCalledTimes(1);
    reads.mockRestore();
    expect(new Set(results.map((p) => p.keyId)).size).toBe(1);
    // Each caller gets its own copy: changing one changes no other, nor what the next call gets.
    results[0].resourceTypes = ['Patient'];
    expect(results[1].resourceTypes).toBeNull();
    expect((await sut.authenticate(secret)).resourceTypes).toBeNull();
  });

  it('records the last use at most once a minute per instance, without waiting and without throwing', async () => {
    const { key, secret } = await createKey('Used');
    const principal: ApiKeyPrincipal = await onA.authenticate(secret);
    expect(onA.recordUse(principal)).toBeUndefined();

    let first: Date | null = null;
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

    // A key that no longer exists, or nonsense: nothing thrown, nothing written.
    expect(() => onA.recordUse({ ...principal, keyId: 'zzzzzzzzzzzz' })).not.toThrow();
    expect(() => onA.recordUse(null as unknown as ApiKeyPrincipal)).not.toThrow();
  });
});
