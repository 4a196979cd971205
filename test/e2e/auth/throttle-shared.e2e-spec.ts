import { csrfFrom, testSecret } from 'test/factories';
import { freshDatabaseUrl } from 'test/setup/database';
import { createTestApp, TestApp } from 'test/setup/test-app';

/**
 * The per-IP login throttle is counted in PostgreSQL: two instances on one database share one
 * limit (a per-process counter would let N instances take N times the limit).
 */
describe('login throttling shared across instances', () => {
  const env = { LOGIN_THROTTLE_LIMIT: '3', LOGIN_THROTTLE_WINDOW_SECONDS: '60' };
  let a: TestApp;
  let b: TestApp;

  beforeAll(async () => {
    const databaseUrl = await freshDatabaseUrl();
    a = await createTestApp({ env, databaseUrl });
    b = await createTestApp({ env, databaseUrl });
  });
  afterAll(async () => {
    await a.close();
    await b.close();
  });

  async function attempt(t: TestApp, i: number): Promise<number> {
    const agent = t.agent();
    const page = await agent.get('/login');
    const res = await agent
      .post('/login')
      .type('form')
      .send({ _csrf: csrfFrom(page.text), email: `user${i}@example.org`, password: testSecret('wrong') });
    return res.status;
  }

  it('counts attempts on both instances against one limit, and forgets them when the window ends', async () => {
    const statuses = [await attempt(a, 0), await attempt(b, 1), await attempt(a, 2), await attempt(b, 3)];
    expect(statuses).toEqual([401, 401, 401, 429]);
    expect(await attempt(a, 4)).toBe(429); // blocked on the other instance too

    // The window and the block end (as time passing would): attempts count from one again.
    await a.dataSource.query(
      `UPDATE throttle_counter SET window_ends_at = now() - interval '1 second', blocked_until = now() - interval '1 second'`,
    );
    expect(await attempt(b, 5)).toBe(401);
    // The per-IP counter (the table also holds the per-account lockout counters, `lockout:…`).
    const [row] = await a.dataSource.query<{ hits: number; blocked_until: Date | null }[]>(
      `SELECT hits, blocked_until FROM throttle_counter WHERE key LIKE 'default:%'`,
    );
    expect(row).toEqual({ hits: 1, blocked_until: null });
  });
});
