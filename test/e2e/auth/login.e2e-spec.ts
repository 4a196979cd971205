import { Role } from 'src/users/user.types';

import { csrfFrom, signIn, TestFactory, testSecret } from 'test/factories';
import { createTestApp, TestApp } from 'test/setup/test-app';

const sessionCookie = (setCookie: string[] | string | undefined): string | undefined =>
  ([] as string[])
    .concat(setCookie ?? [])
    .find((c) => c.startsWith('ec.sid='))
    ?.split(';')[0];

describe('sign-in, sessions and CSRF', () => {
  let t: TestApp;
  let factory: TestFactory;

  beforeAll(async () => {
    t = await createTestApp({ env: { LOGIN_THROTTLE_LIMIT: '1000', ACCOUNT_LOCK_THRESHOLD: '3' } });
    factory = new TestFactory(t);
  });
  afterAll(() => t.close());

  it('serves the login page with a CSRF token and security headers', async () => {
    const res = await t.http().get('/login').expect(200);
    expect(res.text).toContain('<form method="post" action="/login">');
    expect(csrfFrom(res.text)).toBeTruthy();
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    expect(res.headers['content-security-policy']).not.toContain('unsafe-inline');
    expect(res.headers['x-request-id']).toBeTruthy();
  });

  it('signs in with the right password, rotates the session id, and lands on the role home', async () => {
    const org = await factory.organization();
    const admin = await factory.user(Role.OrgAdmin, org.id);
    const agent = t.agent();
    const page = await agent.get('/login').expect(200);
    const before = sessionCookie(page.headers['set-cookie']);
    expect(before).toBeDefined();
    const res = await agent
      .post('/login')
      .type('form')
      .send({ _csrf: csrfFrom(page.text), email: admin.email.toUpperCase(), password: admin.password })
      .expect(303);
    expect(res.headers.location).toBe(`/admin/organizations/${org.id}`);
    const after = sessionCookie(res.headers['set-cookie']);
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
    // The pre-login session id is dead: replaying it is anonymous.
    await t.http().get(`/api/organizations/${org.id}`).set('Cookie', before!).expect(401);
    await agent.get(`/api/organizations/${org.id}`).expect(200);
  });

  it.each([
    ['a wrong password', (u: { email: string }) => ({ email: u.email, password: testSecret('wrong') })],
    ['an unknown user', () => ({ email: 'nobody@example.org', password: testSecret('wrong') })],
  ])('refuses %s with the same message and no session', async (_label, creds) => {
    const org = await factory.organization();
    const admin = await factory.user(Role.OrgAdmin, org.id);
    const agent = t.agent();
    const page = await agent.get('/login');
    const res = await agent
      .post('/login')
      .type('form')
      .send({ _csrf: csrfFrom(page.text), ...creds(admin) })
      .expect(401);
    expect(res.text).toContain('Invalid email or password.');
    await agent.get('/api/organizations').expect(401);
  });

  it('refuses a disabled user', async () => {
    const org = await factory.organization();
    const admin = await factory.user(Role.OrgAdmin, org.id);
    await t.dataSource.query('UPDATE app_user SET disabled = true WHERE id = $1', [admin.id]);
    const agent = t.agent();
    const page = await agent.get('/login');
    const res = await agent
      .post('/login')
      .type('form')
      .send({ _csrf: csrfFrom(page.text), email: admin.email, password: admin.password })
      .expect(401);
    expect(res.text).toContain('This account is disabled');
  });

  it('ends the session of a user disabled while signed in', async () => {
    const org = await factory.organization();
    const admin = await factory.user(Role.OrgAdmin, org.id);
    const { agent } = await signIn(t, admin);
    await agent.get(`/api/organizations/${org.id}`).expect(200);
    await t.dataSource.query('UPDATE app_user SET disabled = true WHERE id = $1', [admin.id]);
    await agent.get(`/api/organizations/${org.id}`).expect(401);
  });

  it('locks an account after repeated failures, even against the right password, until the lock ends', async () => {
    const org = await factory.organization();
    const admin = await factory.user(Role.OrgAdmin, org.id);
    const agent = t.agent();
    for (let i = 0; i < 3; i++) {
      const page = await agent.get('/login');
      await agent
        .post('/login')
        .type('form')
        .send({ _csrf: csrfFrom(page.text), email: admin.email, password: testSecret('wrong') })
        .expect(401);
    }
    let page = await agent.get('/login');
    const locked = await agent
      .post('/login')
      .type('form')
      .send({ _csrf: csrfFrom(page.text), email: admin.email, password: admin.password })
      .expect(401);
    expect(locked.text).toContain('temporarily locked');
    const [{ failures }] = await t.dataSource.query<{ failures: number }[]>(
      `SELECT count(*)::int AS failures FROM audit_event WHERE actor_user_id = $1 AND action = 'auth.login' AND outcome = 'failure'`,
      [admin.id],
    );
    expect(failures).toBe(4);
    // The lock ends (as time passing would).
    await t.dataSource.query(
      `UPDATE throttle_counter SET blocked_until = now() - interval '1 second', window_ends_at = now() - interval '1 second'
        WHERE key LIKE 'lockout:%'`,
    );
    page = await agent.get('/login');
    await agent
      .post('/login')
      .type('form')
      .send({ _csrf: csrfFrom(page.text), email: admin.email, password: admin.password })
      .expect(303);
  });

  it('refuses a form POST without a CSRF token, and one with another session’s token', async () => {
    const org = await factory.organization();
    const admin = await factory.user(Role.OrgAdmin, org.id);
    const agent = t.agent();
    await agent.get('/login');
    const res = await agent
      .post('/login')
      .type('form')
      .send({ email: admin.email, password: admin.password })
      .set('Accept', 'text/html')
      .expect(403);
    expect(res.text).toContain('CSRF');
    const otherPage = await t.http().get('/login');
    await agent
      .post('/login')
      .type('form')
      .send({ _csrf: csrfFrom(otherPage.text), email: admin.email, password: admin.password })
      .expect(403);
  });

  it('protects session-authenticated JSON POSTs with the CSRF header', async () => {
    const root = await factory.user(Role.RootAdmin, null);
    const { agent, csrf } = await signIn(t, root);
    const without = await agent.post('/api/organizations').send({ name: 'No token' }).expect(403);
    expect(without.body.message).toContain('CSRF');
    const withToken = await agent
      .post('/api/organizations')
      .set('x-csrf-token', csrf)
      .send({ name: 'With token' });
    expect(withToken.status).toBe(201);
    expect(withToken.body.slug).toBe('with-token');
  });

  it('logs out: the session row is deleted and the cookie no longer works', async () => {
    const org = await factory.organization();
    const admin = await factory.user(Role.OrgAdmin, org.id);
    const { agent, csrf } = await signIn(t, admin);
    const [{ n: before }] = await t.dataSource.query<{ n: number }[]>(
      `SELECT count(*)::int AS n FROM user_session WHERE sess::text LIKE $1`,
      [`%${admin.id}%`],
    );
    expect(before).toBe(1);
    await agent.post('/logout').type('form').send({ _csrf: csrf }).expect(303).expect('Location', '/login');
    const [{ n: after }] = await t.dataSource.query<{ n: number }[]>(
      `SELECT count(*)::int AS n FROM user_session WHERE sess::text LIKE $1`,
      [`%${admin.id}%`],
    );
    expect(after).toBe(0);
    await agent.get(`/api/organizations/${org.id}`).expect(401);
  });

  it('forces a password change when flagged, then lets the user in', async () => {
    const org = await factory.organization();
    const admin = await factory.user(Role.OrgAdmin, org.id);
    await t.dataSource.query('UPDATE app_user SET must_change_password = true WHERE id = $1', [admin.id]);
    const agent = t.agent();
    const page = await agent.get('/login');
    await agent
      .post('/login')
      .type('form')
      .send({ _csrf: csrfFrom(page.text), email: admin.email, password: admin.password })
      .expect(303)
      .expect('Location', '/account/password');
    await agent.get(`/admin/organizations/${org.id}`).expect(303).expect('Location', '/account/password');
    await agent.get(`/api/organizations/${org.id}`).expect(403);
    const form = await agent.get('/account/password').expect(200);
    const newPassword = testSecret('new');
    const mismatch = await agent
      .post('/account/password')
      .type('form')
      .send({
        _csrf: csrfFrom(form.text),
        currentPassword: admin.password,
        newPassword,
        confirmPassword: `${newPassword}x`,
      })
      .expect(400);
    expect(mismatch.text).toContain('do not match');
    await agent
      .post('/account/password')
      .type('form')
      .send({
        _csrf: csrfFrom(mismatch.text),
        currentPassword: admin.password,
        newPassword,
        confirmPassword: newPassword,
      })
      .expect(303);
    await agent.get(`/api/organizations/${org.id}`).expect(200);
    const relogin = await signIn(t, { email: admin.email, password: newPassword });
    await relogin.agent.get(`/api/organizations/${org.id}`).expect(200);
  });

  it('ends the other sessions of a user who changes their password, and keeps this one', async () => {
    const org = await factory.organization();
    const admin = await factory.user(Role.OrgAdmin, org.id);
    const here = await signIn(t, admin);
    const elsewhere = await signIn(t, admin);
    await elsewhere.agent.get(`/api/organizations/${org.id}`).expect(200);
    const form = await here.agent.get('/account/password');
    const newPassword = testSecret('new');
    await here.agent
      .post('/account/password')
      .type('form')
      .send({
        _csrf: csrfFrom(form.text),
        currentPassword: admin.password,
        newPassword,
        confirmPassword: newPassword,
      })
      .expect(303);
    await here.agent.get(`/api/organizations/${org.id}`).expect(200);
    await elsewhere.agent.get(`/api/organizations/${org.id}`).expect(401);
  });

  it('only follows a same-site return path after login', async () => {
    const root = await factory.user(Role.RootAdmin, null);
    for (const [next, expected] of [
      ['/admin?x=1', '/admin?x=1'],
      ['//evil.example/x', '/admin'],
      ['https://evil.example/x', '/admin'],
    ]) {
      const agent = t.agent();
      const page = await agent.get('/login').query({ next });
      await agent
        .post('/login')
        .type('form')
        .send({ _csrf: csrfFrom(page.text), email: root.email, password: root.password, next })
        .expect(303)
        .expect('Location', expected);
    }
  });

  it('sends an anonymous browser to the login page with a return path', async () => {
    await t
      .http()
      .get('/admin')
      .expect(303)
      .expect('Location', `/login?next=${encodeURIComponent('/admin')}`);
  });
});

describe('login throttling per client IP', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ env: { LOGIN_THROTTLE_LIMIT: '3', LOGIN_THROTTLE_WINDOW_SECONDS: '60' } });
  });
  afterAll(() => t.close());

  it('answers 429 with the login page and Retry-After once the limit is reached, whatever the account', async () => {
    const agent = t.agent();
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const page = await agent.get('/login');
      const res = await agent
        .post('/login')
        .type('form')
        .send({ _csrf: csrfFrom(page.text), email: `user${i}@example.org`, password: testSecret('wrong') });
      statuses.push(res.status);
      if (res.status === 429) {
        // The page says the same wait as the header.
        expect(res.text).toContain(
          `Too many sign-in attempts. Try again in ${res.headers['retry-after']} seconds.`,
        );
        // RFC 6585 §4: seconds until the block ends (one window of 60 s here).
        expect(res.headers['retry-after']).toMatch(/^\d+$/);
        expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
        expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(60);
      }
    }
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
  });
});
