import { formatUtc } from 'src/admin-ui/view-models/connection-row';
import { Role } from 'src/users/user.types';

import { signIn, TestFactory } from 'test/factories';
import { SignedIn } from 'test/factories/epic-connection';
import { createTestApp, TestApp } from 'test/setup/test-app';

const OVERLAP = 3600;
const JWKS_URLS = {
  sandbox: 'http://localhost:3000/.well-known/jwks-sandbox.json',
  production: 'http://localhost:3000/.well-known/jwks.json',
};

interface KeyRow {
  kid: string;
  environment: string;
  alg: string;
  state: string;
  created_at: Date;
  private_key_enc: string | null;
}

/**
 * The root admin's Signing keys page over HTTP: what to register at Epic, the keys, and "Start
 * rotation", for each environment's key set (sandbox, production).
 */
describe('Signing keys page', () => {
  let t: TestApp;
  let root: SignedIn;
  let rootId: string;
  let orgAdmin: SignedIn;

  beforeAll(async () => {
    t = await createTestApp({ env: { KEY_ROTATION_OVERLAP_SECONDS: String(OVERLAP) } });
    const factory = new TestFactory(t);
    const rootUser = await factory.user(Role.RootAdmin, null);
    rootId = rootUser.id;
    root = await signIn(t, rootUser);
    orgAdmin = await signIn(t, await factory.user(Role.OrgAdmin, (await factory.organization()).id));
  });
  afterAll(() => t.close());

  const publishedKids = async (environment: 'sandbox' | 'production' = 'production'): Promise<string[]> => {
    const res = await t
      .http()
      .get(environment === 'sandbox' ? '/.well-known/jwks-sandbox.json' : '/.well-known/jwks.json')
      .expect(200);
    return (res.body as { keys: { kid: string }[] }).keys.map((k) => k.kid).sort();
  };
  const keyRows = () =>
    t.dataSource.query<KeyRow[]>(
      `SELECT kid, environment, alg, state, created_at, private_key_enc FROM client_signing_key
        ORDER BY created_at, environment, alg`,
    );
  const rotate = (form: Record<string, string>) =>
    root.agent.post('/admin/keys/rotate').type('form').send(form);

  /** The page carries no private key material: no private JWK member, no PEM, no stored ciphertext. */
  async function expectNoKeyMaterial(html: string): Promise<void> {
    expect(html).not.toContain('"d":');
    expect(html).not.toContain('&quot;d&quot;:');
    expect(html).not.toContain('PRIVATE KEY');
    const stored = (await keyRows()).map((r) => r.private_key_enc).filter((c): c is string => !!c);
    expect(stored.length).toBeGreaterThanOrEqual(2);
    for (const ciphertext of stored) expect(html).not.toContain(ciphertext);
  }

  it('shows a root admin each set’s JWK Set URL to register and its active keys, linked from the header', async () => {
    const page = await root.agent.get('/admin/keys').expect(200);
    expect(page.text).toContain('<title>Signing keys · epic-connect</title>');
    expect(page.text).toContain('<a href="/admin/keys">Signing keys</a>');
    for (const environment of ['sandbox', 'production'] as const) {
      const kids = await publishedKids(environment);
      expect(kids).toHaveLength(2);
      expect(page.text).toContain(`<code id="jwks-url-${environment}">${JWKS_URLS[environment]}</code>`);
      expect(page.text).toMatch(
        new RegExp(`<button type="button" class="copy" data-copy="jwks-url-${environment}"`),
      );
      expect(page.text).toContain(`<button type="submit" id="start-rotation-${environment}">`);
      for (const kid of kids) {
        expect(page.text).toMatch(new RegExp(`<tr data-kid="${kid}" data-state="active">`));
        expect(page.text).toContain(`title="${kid}">${kid}</code>`);
      }
    }
    expect(page.text).toContain('RS384');
    expect(page.text).toContain('ES384');
    expect(page.text).toContain('Rotation due ');
    expect(page.text).toContain('(1 hour)'); // the overlap, in words
    expect(page.text).toMatch(/<script src="\/static\/js\/copy\.js" defer><\/script>/);
    expect(page.text).not.toMatch(/<script>(?!<)/); // no inline script (CSP)
    await expectNoKeyMaterial(page.text);
  });

  it('refuses org admins (403, like the other root-only pages) and sends the signed-out to sign in', async () => {
    await orgAdmin.agent.get('/admin/keys').expect(403);
    await orgAdmin.agent
      .post('/admin/keys/rotate')
      .type('form')
      .send({ _csrf: orgAdmin.csrf, environment: 'production' })
      .expect(403);
    expect((await orgAdmin.agent.get('/admin/notifications').expect(200)).text).not.toContain('Signing keys');
    const anonymous = await t.agent().get('/admin/keys').expect(303);
    expect(anonymous.headers.location).toBe(`/login?next=${encodeURIComponent('/admin/keys')}`);
    expect(await publishedKids()).toHaveLength(2);
  });

  it('refuses a rotation posted without the CSRF token', async () => {
    await rotate({ environment: 'production' }).expect(403);
    await rotate({ _csrf: 'not-the-token', environment: 'production' }).expect(403);
    expect(await publishedKids()).toHaveLength(2);
  });

  it('publishes a next key per algorithm of one set, says when they sign, audits it, and adds none the second time', async () => {
    const before = await publishedKids();
    const sandboxBefore = await publishedKids('sandbox');
    const res = await rotate({ _csrf: root.csrf, environment: 'production' }).expect(303);
    expect(res.headers.location).toBe('/admin/keys');

    const next = (await keyRows()).filter((r) => r.state === 'next');
    expect(next.map((r) => [r.environment, r.alg]).sort()).toEqual([
      ['production', 'ES384'],
      ['production', 'RS384'],
    ]);
    expect(await publishedKids('sandbox')).toEqual(sandboxBefore);
    const after = await publishedKids();
    expect(after).toHaveLength(4);
    expect(after).toEqual(expect.arrayContaining(before));
    const signsFrom = formatUtc(new Date(next[0].created_at.getTime() + OVERLAP * 1000));

    const page = await root.agent.get('/admin/keys').expect(200);
    expect(page.text).toMatch(/<p class="alert success">Published new production signing keys: /);
    expect(page.text).toContain(`(signs from ${signsFrom})`);
    for (const row of next) {
      expect(page.text).toContain(`<tr data-kid="${row.kid}" data-state="next">`);
      expect(page.text).toContain(`${row.alg} ${row.kid.slice(0, 12)}…`);
    }
    expect(page.text).toContain('>Next</span>');
    expect(page.text).toContain(`Promotes at ${signsFrom}`);
    expect(page.text).toContain(`Stops signing at ${signsFrom}`);
    expect(page.text).toContain('A production rotation is under way');
    expect(page.text).not.toContain('A sandbox rotation is under way');
    await expectNoKeyMaterial(page.text);

    // The flash is shown once.
    expect((await root.agent.get('/admin/keys').expect(200)).text).not.toContain(
      'Published new production signing keys',
    );

    const audit = await t.dataSource.query<
      { actor_user_id: string; detail: { kid: string; reason: string } }[]
    >(`SELECT actor_user_id, detail FROM audit_event WHERE action = 'client-key.published'`);
    expect(audit.map((a) => a.detail.kid).sort()).toEqual(next.map((r) => r.kid).sort());
    for (const row of audit) {
      expect(row).toMatchObject({ actor_user_id: rootId, detail: { reason: 'admin' } });
    }

    // Again while the next keys wait: nothing new, and the page says so.
    await rotate({ _csrf: root.csrf, environment: 'production' }).expect(303);
    expect(await publishedKids()).toEqual(after);
    expect(await keyRows()).toHaveLength(6); // 2 active per set, 2 next in production
    const again = await root.agent.get('/admin/keys').expect(200);
    expect(again.text).toContain(
      '<p class="alert info">A production rotation is already under way, so no other key was made: ',
    );
    expect(again.text).not.toContain('Published new production signing keys');
    expect(
      await t.dataSource.query(`SELECT 1 FROM audit_event WHERE action = 'client-key.published'`),
    ).toHaveLength(2);
  });
});
