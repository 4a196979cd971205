import { randomUUID } from 'node:crypto';

import { MailPreferencesService } from 'src/mail/mail-preferences.service';
import { Role } from 'src/users/user.types';

import { csrfFrom, signIn, TestFactory } from 'test/factories';
import { CALLBACK, registeredOrganization } from 'test/factories/epic-connection';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

/** PUBLIC_BASE_URL's default in tests (the fake Epic's registered callback is built on it). */
const OWN_ORIGIN = new URL(CALLBACK).origin;

/**
 * State-changing requests check Origin / Sec-Fetch-Site besides the CSRF token.
 * Another site is refused with 403 even with a valid token; our own pages, and clients that send
 * no Origin (supertest, curl) with a token, keep working; the EHR launch, which an EHR POSTs from
 * its own site, and Epic's callback (a GET) are exempt by design.
 */
describe('cross-site requests', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let root: Awaited<ReturnType<typeof signIn>>;

  beforeAll(async () => {
    [t, epic] = await Promise.all([createTestApp(), startFakeEpic()]);
    root = await signIn(t, await new TestFactory(t).user(Role.RootAdmin, null));
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });

  const create = (headers: Record<string, string>) => {
    const req = root.agent.post('/api/organizations').set('x-csrf-token', root.csrf);
    for (const [name, value] of Object.entries(headers)) req.set(name, value);
    return req.send({ name: `Cross-site ${Math.random().toString(36).slice(2, 8)}` });
  };

  it.each<[string, Record<string, string>]>([
    ['another Origin', { Origin: 'https://evil.example' }],
    ['Origin null (sandboxed or redirected)', { Origin: 'null' }],
    ['a lookalike Origin', { Origin: `${OWN_ORIGIN}.evil.example` }],
    ['Sec-Fetch-Site: cross-site', { 'Sec-Fetch-Site': 'cross-site' }],
    ['Sec-Fetch-Site: same-site (a sibling subdomain)', { 'Sec-Fetch-Site': 'same-site' }],
    ['Sec-Fetch-Site: cross-site with our Origin', { 'Sec-Fetch-Site': 'cross-site', Origin: OWN_ORIGIN }],
  ])('refuses a JSON POST with a valid CSRF token from %s: 403', async (_label, headers) => {
    const res = await create(headers).expect(403);
    expect(res.body.message).toMatch(/^Cross-site request refused/);
  });

  it.each<[string, Record<string, string>]>([
    ['no Origin (a non-browser client)', {}],
    ['our own Origin', { Origin: OWN_ORIGIN }],
    [
      'Sec-Fetch-Site: same-origin (reached under another host name)',
      {
        'Sec-Fetch-Site': 'same-origin',
        Origin: 'http://127.0.0.1:3000',
      },
    ],
    ['Sec-Fetch-Site: none (typed by the user)', { 'Sec-Fetch-Site': 'none' }],
  ])('accepts a JSON POST with a valid CSRF token and %s', async (_label, headers) => {
    await create(headers).expect(201);
  });

  it('refuses a cross-site sign-in form, as a page, and still needs the token from our own pages', async () => {
    const factory = new TestFactory(t);
    const user = await factory.user(Role.OrgAdmin, (await factory.organization()).id);
    const agent = t.agent();
    const page = await agent.get('/login');
    const form = { _csrf: csrfFrom(page.text), email: user.email, password: user.password };
    const refused = await agent
      .post('/login')
      .set('Origin', 'https://evil.example')
      .set('Accept', 'text/html')
      .type('form')
      .send(form)
      .expect(403);
    expect(refused.text).toContain('Cross-site request refused');
    await agent
      .post('/login')
      .set('Origin', OWN_ORIGIN)
      .type('form')
      .send({ ...form, _csrf: 'x' })
      .expect(403);
    await agent.post('/login').set('Origin', OWN_ORIGIN).type('form').send(form).expect(303);
  });

  it('keeps the EHR launch (POSTed by the EHR from its own site) and Epic’s callback working', async () => {
    const { clientId } = await registeredOrganization(t, epic, { scopes: 'user/Patient.read' });
    const { iss, launch } = epic.launchContext({ patient: SEED.camila, clientId });
    const browser = t.agent();
    const crossSite = { Origin: new URL(epic.fhirBase).origin, 'Sec-Fetch-Site': 'cross-site' };
    const started = await browser
      .post('/fhir/epic-launch')
      .set(crossSite)
      .type('form')
      .send({ iss, launch })
      .expect(303);
    const authorize = new URL(started.headers.location);
    expect(authorize.origin + authorize.pathname).toBe(epic.authorizeUrl);
    const back = new URL((await epic.authorizeAsUser(authorize)).location!);
    const done = await browser
      .get(back.pathname + back.search)
      .set('Sec-Fetch-Site', 'cross-site')
      .expect(303);
    expect(done.headers.location).toMatch(/^\/launch\/provider\/[0-9a-f-]{36}$/);
  });

  it.each<[string, (c: { orgId: string }) => string, 'form' | 'json', 'root' | 'patient']>([
    ['POST /account/notifications', () => '/account/notifications', 'form', 'root'],
    ['POST /launch/patient/notifications', () => '/launch/patient/notifications', 'form', 'patient'],
    [
      'POST /admin/notifications/outbox/:id/retry',
      () => `/admin/notifications/outbox/${randomUUID()}/retry`,
      'form',
      'root',
    ],
    [
      'POST /api/notifications/outbox/:id/retry',
      () => `/api/notifications/outbox/${randomUUID()}/retry`,
      'json',
      'root',
    ],
  ])('refuses %s from another site even with a valid CSRF token: 403', async (_route, path, kind, who) => {
    const factory = new TestFactory(t);
    const orgId = (await factory.organization()).id;
    const actor = who === 'root' ? root : await signIn(t, await factory.user(Role.Patient, orgId));
    const req = actor.agent
      .post(path({ orgId }))
      .set({ Origin: 'https://evil.example', 'Sec-Fetch-Site': 'cross-site' });
    const res =
      kind === 'json'
        ? await req.set('x-csrf-token', actor.csrf).send({})
        : await req
            .type('form')
            .send({ _csrf: actor.csrf, 'admin-connections': 'off', contactEmail: 'evil@example.org' });
    expect(res.status).toBe(403);
    expect(res.text).toContain('Cross-site request refused');
  });

  it('lets GET and POST /mail/unsubscribe through from another site, by design (RFC 8058 one-click)', async () => {
    // The one-click POST comes from the mailbox provider's servers (cross-site, no cookie, no CSRF
    // token); the signed token in the URL is the authority, and all it can do is turn one email off.
    const factory = new TestFactory(t);
    const user = await factory.user(Role.OrgAdmin, (await factory.organization()).id);
    const url = new URL(
      t.app
        .get(MailPreferencesService)
        .unsubscribeUrl({ userId: user.id, channel: 'admin-connections', tokenId: randomUUID() }),
    );
    const crossSite = { Origin: 'https://mail.example', 'Sec-Fetch-Site': 'cross-site' };
    await t
      .http()
      .get(url.pathname + url.search)
      .set(crossSite)
      .expect(200);
    const done = await t
      .http()
      .post(url.pathname + url.search)
      .set(crossSite)
      .type('form')
      .send('List-Unsubscribe=One-Click')
      .expect(200);
    expect(done.text).toContain('You are unsubscribed');
  });
});
