import { Role } from 'src/users/user.types';

import { signIn, TestFactory } from 'test/factories';
import { connectedOrganization, setStoredExpiry, SignedIn } from 'test/factories/epic-connection';
import { FakeEpic, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

/** The root admin console's table: states from the one state model, filter, search, sort, pages. */
describe('root admin console', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let root: SignedIn;
  let expiredId: string;
  let connectedId: string;

  beforeAll(async () => {
    [t, epic] = await Promise.all([createTestApp(), startFakeEpic()]);
    const factory = new TestFactory(t);
    root = await signIn(t, await factory.user(Role.RootAdmin, null));
    // 55 organizations that are not configured, named to sort before the rest.
    for (let i = 0; i < 55; i++) await factory.organization(`Aaa Clinic ${String(i).padStart(2, '0')}`);
    connectedId = (await connectedOrganization(t, epic)).orgId;
    expiredId = (await connectedOrganization(t, epic, { persistentAccess: false })).orgId;
    await setStoredExpiry(t, expiredId, -60_000);
    await t.dataSource.query(`UPDATE organization SET name = 'Zed Expired Hospital' WHERE id = $1`, [
      expiredId,
    ]);
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });

  const rowsOf = (html: string) =>
    [...html.matchAll(/<tr>\s*<td><a href="\/admin\/organizations\/([0-9a-f-]+)">/g)].map((m) => m[1]);

  it('shows counts by state, with words on every badge', async () => {
    const page = await root.agent.get('/admin').expect(200);
    expect(page.text).toMatch(/Need attention: 1</);
    expect(page.text).toMatch(/❌ Expired: 1</);
    expect(page.text).toMatch(/✅ Connected: 1</);
    expect(page.text).toMatch(/Not configured: 55</);
  });

  it('filters by state: "attention" lists the expired organization only', async () => {
    const page = await root.agent.get('/admin?state=attention').expect(200);
    expect(rowsOf(page.text)).toEqual([expiredId]);
    expect(page.text).toContain('❌ Expired');
    const connected = await root.agent.get('/admin?state=connected').expect(200);
    expect(rowsOf(connected.text)).toEqual([connectedId]);
  });

  it('searches by name and pages by 50', async () => {
    const first = await root.agent.get('/admin').expect(200);
    expect(rowsOf(first.text)).toHaveLength(50);
    expect(first.text).toContain('1–50 of 57');
    const next = /<a href="([^"]+)" rel="next">/.exec(first.text)![1].replace(/&#x3D;/g, '=');
    expect(next).toBe('/admin?page=2');
    const second = await root.agent.get(next).expect(200);
    expect(second.text).not.toContain('rel="next"');
    expect(rowsOf(second.text)).toHaveLength(7);
    const search = await root.agent.get('/admin?q=zed%20exp').expect(200);
    expect(rowsOf(search.text)).toEqual([expiredId]);
  });

  it('sorts by state with the worst first', async () => {
    const page = await root.agent.get('/admin?sort=state').expect(200);
    expect(rowsOf(page.text)[0]).toBe(expiredId);
  });

  it('refuses a bad filter with a message', async () => {
    const res = await root.agent.get('/admin?state=broken').expect(400);
    expect(res.text).toContain('state must be a connection state');
  });

  it('shows the state on the organization page', async () => {
    const page = await root.agent.get(`/admin/organizations/${expiredId}`).expect(200);
    expect(page.text).toContain('❌ Expired');
  });

  it('lets a root admin rename an organization from its page', async () => {
    const page = await root.agent.get(`/admin/organizations/${connectedId}`).expect(200);
    expect(page.text).toContain('Rename organization');
    await root.agent
      .post(`/admin/organizations/${connectedId}/rename`)
      .type('form')
      .send({ _csrf: root.csrf, name: 'Renamed Clinic' })
      .expect(303);
    expect((await root.agent.get(`/admin/organizations/${connectedId}`).expect(200)).text).toContain(
      'Renamed Clinic',
    );
    await root.agent
      .post(`/admin/organizations/${connectedId}/rename`)
      .type('form')
      .send({ _csrf: root.csrf, name: '' })
      .expect(400);
  });
});
