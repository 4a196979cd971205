import { Role } from 'src/users/user.types';

import { signIn, TestFactory } from 'test/factories';
import { CALLBACK, SignedIn } from 'test/factories/epic-connection';
import { testSecret } from 'test/factories/secrets';
import { createTestApp, TestApp } from 'test/setup/test-app';

/** The Epic registration page over HTTP (its scripts are exercised in the browser tests). */
describe('Epic registration page', () => {
  let t: TestApp;
  let orgId: string;
  let admin: SignedIn;

  beforeAll(async () => {
    t = await createTestApp();
    const factory = new TestFactory(t);
    orgId = (await factory.organization('Registration Clinic')).id;
    admin = await signIn(t, await factory.user(Role.OrgAdmin, orgId));
  });
  afterAll(() => t.close());

  const post = (form: Record<string, string>, agent = admin) =>
    agent.agent
      .post(`/admin/epic/registration?org=${orgId}`)
      .type('form')
      .send({ _csrf: agent.csrf, ...form });

  it('sends an org admin to their own organization, a root admin without ?org to the console', async () => {
    const res = await admin.agent.get('/admin/epic/registration').expect(303);
    expect(res.headers.location).toBe(`/admin/epic/registration?org=${orgId}`);
    const root = await signIn(t, await new TestFactory(t).user(Role.RootAdmin, null));
    expect((await root.agent.get('/admin/epic/registration').expect(303)).headers.location).toBe('/admin');
    await root.agent.get(`/admin/epic/registration?org=${orgId}`).expect(200);
  });

  it('shows the exact callback URL, the EHR launch URL and the scopes to register, with a title', async () => {
    const page = await admin.agent.get(`/admin/epic/registration?org=${orgId}`).expect(200);
    expect(page.text).toContain(`<code id="redirect-uri">${CALLBACK}</code>`);
    expect(page.text).toMatch(
      /<code id="launch-url">http:\/\/localhost:3000\/fhir\/epic-launch\?org(=|&#x3D;)registration-clinic[^<]*<\/code>/,
    );
    expect(page.text).toContain('launch openid fhirUser');
    expect(page.text).toContain('<title>Epic registration · Registration Clinic · epic-connect</title>');
    expect(page.text).toMatch(/<script src="\/static\/js\/registration\.js" defer><\/script>/);
    expect(page.text).not.toMatch(/<script>(?!<)/); // no inline script
  });

  it('shows the organization’s FHIR gateway base URL with Copy, a curl example with no key, and links to the keys page', async () => {
    const page = await admin.agent.get(`/admin/epic/registration?org=${orgId}`).expect(200);
    const base = 'http://localhost:3000/gateway/registration-clinic/fhir';
    expect(page.text).toContain(`<code id="gateway-base-url">${base}</code>`);
    expect(page.text).toContain('<button type="button" class="copy" data-copy="gateway-base-url"');
    expect(page.text).toContain(
      `<code id="gateway-curl">curl -H &quot;Authorization: Bearer $EPIC_CONNECT_KEY&quot; -H &quot;Accept: application/fhir+json&quot; &quot;${base}/Patient?name&#x3D;smith&quot;</code>`,
    );
    expect(page.text).toContain('data-copy="gateway-curl"');
    expect(page.text).not.toMatch(/ecgk_[a-z0-9]{12}_/);
    expect(page.text).toContain(`<a href="/admin/organizations/${orgId}/api-keys" id="api-keys-link">`);
    expect(page.text).toContain('<script src="/static/js/copy.js" defer></script>');
  });

  it('re-renders invalid input beside each field, keeps what was typed, never echoes the secret', async () => {
    const secret = testSecret();
    const res = await post({
      clientId: '',
      clientSecret: secret,
      environment: 'production',
      fhirBaseUrl: 'ftp://example.org/fhir',
      scopes: 'user/Patient.read bad"scope',
    }).expect(400);
    expect(res.text).toContain('id="clientId-error"');
    expect(res.text).toContain('id="scopes-error"');
    expect(res.text).toContain('value="ftp://example.org/fhir"');
    expect(res.text).toContain('Nothing was saved');
    expect(res.text).not.toContain(secret);
    // Fields that pass on their own but fail the service's checks are marked too.
    const url = await post({
      clientId: 'c',
      clientSecret: secret,
      environment: 'production',
      fhirBaseUrl: 'ftp://example.org/fhir',
    }).expect(400);
    expect(url.text).toMatch(/id="fhirBaseUrl-error">[^<]*http/);
    expect(url.text).toContain('value="c"');
    expect(url.text).not.toContain(secret);
    const org = await admin.agent.get(`/api/organizations/${orgId}`).expect(200);
    expect(org.body.epicClientId).toBeNull();
  });

  it('saves, then shows "saved" for the secret and asks the page to test the connection', async () => {
    const secret = testSecret();
    const saved = await post({
      clientId: 'registration-client',
      clientSecret: secret,
      environment: 'sandbox',
      fhirBaseUrl: '',
      scopes: 'user/Patient.read',
      tokenAuthMethod: 'client_secret_basic',
    }).expect(303);
    expect(saved.headers.location).toBe(`/admin/epic/registration?org=${orgId}&saved=1`);
    const page = await admin.agent.get(saved.headers.location).expect(200);
    expect(page.text).toContain('data-saved="1"');
    expect(page.text).toContain('saved (leave blank to keep it)');
    expect(page.text).toContain('value="https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4"');
    expect(page.text).toContain('id="connect"');
    expect(page.text).toMatch(/target="_blank" rel="noopener"/);
    expect(page.text).not.toContain(secret);

    // A blank secret keeps the saved one.
    await post({
      clientId: 'registration-client',
      clientSecret: '',
      environment: 'sandbox',
      scopes: 'user/Patient.read',
    }).expect(303);
    expect((await admin.agent.get(`/api/organizations/${orgId}`).expect(200)).body.hasClientSecret).toBe(
      true,
    );
  });

  it("hides other organizations' pages, and unknown ids, behind a 404 page", async () => {
    const other = await new TestFactory(t).organization();
    const res = await admin.agent.get(`/admin/epic/registration?org=${other.id}`).expect(404);
    expect(res.text).toContain('<title>');
    await admin.agent.get('/admin/epic/registration?org=not-a-uuid').expect(404);
    await admin.agent
      .post(`/admin/epic/registration?org=${other.id}`)
      .type('form')
      .send({ _csrf: admin.csrf, clientId: 'x', environment: 'sandbox' })
      .expect(404);
  });

  it('keeps an explicit Basic credential encoding chosen on the form, and refuses an unknown one', async () => {
    const form = {
      clientId: 'registration-client',
      environment: 'sandbox',
      scopes: 'user/Patient.read',
      tokenAuthMethod: 'client_secret_basic',
    };
    await post({ ...form, basicEncoding: 'raw' }).expect(303);
    const page = await admin.agent.get(`/admin/epic/registration?org=${orgId}`).expect(200);
    expect(page.text).toMatch(/<option value="raw" selected>/);
    const [row] = await t.dataSource.query<{ epic_basic_encoding: string }[]>(
      'SELECT epic_basic_encoding FROM organization WHERE id = $1',
      [orgId],
    );
    expect(row.epic_basic_encoding).toBe('raw');
    const bad = await post({ ...form, basicEncoding: 'rot13' }).expect(400);
    expect(bad.text).toContain('basicEncoding must be auto, form-urlencoded or raw');
    await post({ ...form, basicEncoding: 'auto' }).expect(303);
  });

  it('refuses a form post without the CSRF token', async () => {
    await admin.agent
      .post(`/admin/epic/registration?org=${orgId}`)
      .type('form')
      .send({ clientId: 'x', environment: 'sandbox' })
      .expect(403);
  });

  it('sends an expired session to the login page with a return to the registration page', async () => {
    const res = await t.agent().get(`/admin/epic/registration?org=${orgId}`).expect(303);
    expect(res.headers.location).toBe(
      `/login?next=${encodeURIComponent(`/admin/epic/registration?org=${orgId}`)}`,
    );
  });

  it('serves its script and stylesheet with cache headers', async () => {
    const js = await t.http().get('/static/js/registration.js').expect(200);
    expect(js.headers['cache-control']).toMatch(/max-age=3600/);
    expect(js.text).toContain('test-epic-connection');
  });
});
