import { Role } from 'src/users/user.types';
import { UsersService } from 'src/users/users.service';

import { csrfFrom, TestFactory, testSecret, TestUser } from 'test/factories';
import { freshDatabaseUrl } from 'test/setup/database';
import { createTestApp, TestApp } from 'test/setup/test-app';

const INVALID = 'Invalid email or password.';
const LOCKED = 'Invalid email or password, or the account is temporarily locked after too many attempts.';

/**
 * Failed sign-ins are counted per email and client address (and per email from everywhere, with a
 * much higher threshold), in PostgreSQL. A guesser locks only their own address out, a known and an
 * unknown email answer alike, and guessing from many addresses stays bounded. Two instances share
 * one database, as replicas do; TRUST_PROXY takes the client address from X-Forwarded-For.
 */
describe('sign-in lockout per account and client address', () => {
  const env = {
    TRUST_PROXY: 'true',
    ACCOUNT_LOCK_THRESHOLD: '5',
    ACCOUNT_LOCK_GLOBAL_THRESHOLD: '12',
    LOGIN_THROTTLE_LIMIT: '10000',
  };
  let a: TestApp;
  let b: TestApp;
  let factory: TestFactory;

  beforeAll(async () => {
    const databaseUrl = await freshDatabaseUrl();
    a = await createTestApp({ env, databaseUrl });
    b = await createTestApp({ env, databaseUrl });
    factory = new TestFactory(a);
  });
  afterAll(async () => {
    await a.close();
    await b.close();
  });

  /** One sign-in from `ip` in a fresh browser: the status, the message shown, and how long it took. */
  async function attempt(
    t: TestApp,
    ip: string,
    email: string,
    password: string,
  ): Promise<{ status: number; message: string | undefined; ms: number }> {
    const agent = t.agent();
    const page = await agent.get('/login').set('X-Forwarded-For', ip).expect(200);
    const started = performance.now();
    const res = await agent
      .post('/login')
      .set('X-Forwarded-For', ip)
      .type('form')
      .send({ _csrf: csrfFrom(page.text), email, password });
    const ms = performance.now() - started;
    return {
      status: res.status,
      message: /<p class="alert bad" role="alert">([^<]*)<\/p>/.exec(res.text)?.[1],
      ms,
    };
  }

  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

  it('answers a known and an unknown email alike, attempt by attempt, at the same cost', async () => {
    const user = await factory.user(Role.OrgAdmin, (await factory.organization()).id);
    const unknown = `nobody-${Date.now()}@example.org`;
    const known: Awaited<ReturnType<typeof attempt>>[] = [];
    const absent: Awaited<ReturnType<typeof attempt>>[] = [];
    for (let i = 0; i < 7; i++) {
      known.push(await attempt(a, '192.0.2.10', user.email, testSecret('wrong')));
      absent.push(await attempt(a, '192.0.2.10', unknown, testSecret('wrong')));
    }
    const expected = [INVALID, INVALID, INVALID, INVALID, LOCKED, LOCKED, LOCKED];
    expect(known.map((r) => r.message)).toEqual(expected);
    expect(absent.map((r) => r.message)).toEqual(expected);
    expect(new Set([...known, ...absent].map((r) => r.status))).toEqual(new Set([401]));
    // Both cost one password hash (scrypt, tens of milliseconds) and the same queries: no
    // difference a timing attack could use. The bound is loose for a busy machine; a missing hash
    // would make an unknown email several times faster.
    const ratio = median(absent.map((r) => r.ms)) / median(known.map((r) => r.ms));
    expect(ratio).toBeGreaterThan(0.5);
    expect(ratio).toBeLessThan(2);
  });

  it('locks only the guessing address: the owner signs in from elsewhere, on either instance', async () => {
    const root = await factory.user(Role.RootAdmin, null);
    const attacker = '203.0.113.66';
    const answers: (string | undefined)[] = [];
    for (let i = 0; i < 5; i++) {
      // Alternating instances: the count is in PostgreSQL, not in a process.
      answers.push((await attempt(i % 2 ? b : a, attacker, root.email, testSecret('guess'))).message);
    }
    expect(answers).toEqual([INVALID, INVALID, INVALID, INVALID, LOCKED]);
    // From the guessing address even the right password is refused, on both instances …
    expect(await attempt(b, attacker, root.email, root.password)).toMatchObject({
      status: 401,
      message: LOCKED,
    });
    // … while the owner, elsewhere, signs in, and the guesser stays locked afterwards.
    expect((await attempt(a, '198.51.100.7', root.email, root.password)).status).toBe(303);
    expect((await attempt(b, '198.51.100.8', root.email, root.password)).status).toBe(303);
    expect(await attempt(a, attacker, root.email, root.password)).toMatchObject({
      status: 401,
      message: LOCKED,
    });
    // A success clears its own address's count: four more failures from there do not lock it.
    for (let i = 0; i < 4; i++) {
      expect((await attempt(a, '198.51.100.7', root.email, testSecret('typo'))).message).toBe(INVALID);
    }
    expect((await attempt(a, '198.51.100.7', root.email, root.password)).status).toBe(303);
  });

  it('counts nothing from a locked address: one address cannot reach the account-wide lock', async () => {
    const user = await factory.user(Role.OrgAdmin, (await factory.organization()).id);
    const attacker = '203.0.113.77';
    // 15 guesses (the account-wide threshold is 12): the first 5 count and lock this address only.
    const answers: (string | undefined)[] = [];
    for (let i = 0; i < 15; i++) {
      answers.push((await attempt(i % 2 ? b : a, attacker, user.email, testSecret('guess'))).message);
    }
    expect(answers.slice(0, 5)).toEqual([INVALID, INVALID, INVALID, INVALID, LOCKED]);
    expect(answers.slice(5).every((m) => m === LOCKED)).toBe(true);
    expect((await attempt(a, '198.51.100.21', user.email, user.password)).status).toBe(303);
  });

  it('bounds guessing from many addresses: the account-wide count locks it everywhere, for a while', async () => {
    const victim: TestUser = await factory.user(Role.OrgAdmin, (await factory.organization()).id);
    const answers: (string | undefined)[] = [];
    // 6 addresses × 4 guesses: each stays under its own threshold of 5.
    for (let host = 1; host <= 6; host++) {
      for (let i = 0; i < 4; i++) {
        answers.push(
          (await attempt(host % 2 ? a : b, `203.0.113.${host}`, victim.email, testSecret('g'))).message,
        );
      }
    }
    // Only 11 guesses were checked; the 12th failure locked the account everywhere.
    expect(answers.filter((m) => m === INVALID)).toHaveLength(11);
    expect(answers.slice(11).every((m) => m === LOCKED)).toBe(true);
    expect(await attempt(a, '198.51.100.99', victim.email, victim.password)).toMatchObject({
      status: 401,
      message: LOCKED,
    });
    // The lock ends (as ACCOUNT_LOCK_MINUTES passing would): the owner gets in again.
    await a.dataSource.query(
      `UPDATE throttle_counter SET blocked_until = now() - interval '1 second', window_ends_at = now() - interval '1 second'
        WHERE key LIKE 'lockout:%'`,
    );
    expect((await attempt(b, '198.51.100.99', victim.email, victim.password)).status).toBe(303);
  });

  it('stores no email in the counters, and an operator password reset ends every lock of the account', async () => {
    const user = await factory.user(Role.OrgAdmin, (await factory.organization()).id);
    for (let i = 0; i < 5; i++) await attempt(a, '192.0.2.77', user.email, testSecret('wrong'));
    const keys = await a.dataSource.query<{ key: string }[]>(`SELECT key FROM throttle_counter`);
    expect(keys.some((k) => k.key.includes(user.email) || k.key.includes('example.org'))).toBe(false);
    expect(await attempt(a, '192.0.2.77', user.email, user.password)).toMatchObject({ message: LOCKED });
    // What `npm run cli -- reset-password` calls.
    const fresh = testSecret('reset');
    await a.app.get(UsersService).setPassword(user.id, fresh, true);
    expect((await attempt(a, '192.0.2.77', user.email, fresh)).status).toBe(303);
  });
});
