import { ClientKeysService, JWKS_REFRESH_MS } from 'src/client-keys/client-keys.service';
import { KeyRotationService } from 'src/client-keys/key-rotation.service';

import { freshDatabaseUrl } from 'test/setup/database';
import { createTestApp, TestApp } from 'test/setup/test-app';

const kidsOf = (body: unknown): string[] =>
  (body as { keys: { kid: string }[] }).keys.map((k) => k.kid).sort();

/**
 * The JWK Set is served from memory: Epic fetches it during our own token calls, and that request
 * must not wait for a database connection. It is read at start-up, after each rotation step taken
 * here, and in the background (JWKS_REFRESH_MS) for the steps other instances take.
 */
describe('the JWK Set served from memory', () => {
  let a: TestApp;
  let b: TestApp;

  beforeAll(async () => {
    const databaseUrl = await freshDatabaseUrl();
    // One connection for `a`, so a test can hold all of them.
    a = await createTestApp({ databaseUrl, env: { DATABASE_POOL_SIZE: '1' } });
    b = await createTestApp({ databaseUrl });
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    await a.close();
    await b.close();
  });

  it('answers while every database connection of the instance is taken', async () => {
    const before = await a.http().get('/.well-known/jwks.json').expect(200);
    const runner = a.dataSource.createQueryRunner();
    await runner.connect(); // the pool's only connection
    await runner.startTransaction();
    try {
      const started = performance.now();
      const during = await a.http().get('/.well-known/jwks.json').timeout(5_000).expect(200);
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(kidsOf(during.body)).toEqual(kidsOf(before.body));
      expect(kidsOf(during.body)).toHaveLength(2);
      expect(during.headers['cache-control']).toMatch(/^public, max-age=\d+$/);
    } finally {
      await runner.rollbackTransaction();
      await runner.release();
    }
  });

  it('serves a rotation step at once where it was taken, and within the refresh interval elsewhere', async () => {
    const before = kidsOf((await a.http().get('/.well-known/jwks.json').expect(200)).body);

    // The instance that takes the step publishes the new `next` keys as soon as it commits.
    const nexts = await b.app.get(KeyRotationService).startRotation(null, 'production');
    const withNext = [...before, ...nexts.map((k) => k.kid)].sort();
    expect(kidsOf((await b.http().get('/.well-known/jwks.json').expect(200)).body)).toEqual(withNext);

    // On the other instance: still the set it read, without asking the database...
    expect(kidsOf((await a.http().get('/.well-known/jwks.json').expect(200)).body)).toEqual(before);

    // ...until its copy is older than JWKS_REFRESH_MS: that request still gets the copy at once
    // (stale-while-revalidate) and starts a reload, which the next requests see.
    const realNow = Date.now.bind(Date);
    const later = jest.spyOn(Date, 'now').mockImplementation(() => realNow() + JWKS_REFRESH_MS + 1_000);
    const stale = await a.http().get('/.well-known/jwks.json').expect(200);
    later.mockRestore();
    expect(kidsOf(stale.body)).toEqual(before);
    await waitFor(async () => {
      const res = await a.http().get('/.well-known/jwks.json').expect(200);
      return kidsOf(res.body).join() === withNext.join();
    });
    expect(kidsOf(await a.app.get(ClientKeysService).publicJwks('production'))).toEqual(withNext);
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
