/// <reference lib="dom" />
import { Browser, BrowserContext, Page } from 'playwright-core';

import { Role } from 'src/users/user.types';

import { TestFactory } from 'test/factories';
import { FakeEpic, startFakeEpic } from 'test/fakes/epic';
import { TestApp } from 'test/setup/test-app';

import { screenshot, signInWithBrowser, startBrowserHarness } from './harness';

/**
 * private_key_jwt in Chromium: the root admin's Signing keys page (copy the JWK Set URL, start a
 * rotation) and the registration page's client-authentication switches. One browser, one app.
 */
jest.setTimeout(120_000);

describe('signing keys and private_key_jwt in Chromium', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let browser: Browser;
  let context: BrowserContext;
  let base: string;
  let page: Page;
  let orgId: string;

  beforeAll(async () => {
    [{ t, base, browser }, epic] = await Promise.all([startBrowserHarness(), startFakeEpic()]);
    context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    const factory = new TestFactory(t);
    orgId = (await factory.organization('Backend Clinic')).id;
    const root = await factory.user(Role.RootAdmin, null);
    page = await context.newPage();
    await signInWithBrowser(page, base, root);
  });
  afterAll(async () => {
    await browser?.close();
    await epic?.close();
    await t?.close();
  });

  /** The organizations here are in the sandbox environment: its key set and JWK Set URL. */
  const jwksUrl = (environment: 'sandbox' | 'production' = 'sandbox') =>
    `${base}/.well-known/${environment === 'sandbox' ? 'jwks-sandbox.json' : 'jwks.json'}`;
  const rowsIn = (state: string, environment: 'sandbox' | 'production') =>
    page.locator(`table.keys[data-environment="${environment}"] tr[data-state="${state}"]`);

  it('1. the root admin copies each set’s JWK Set URL and starts a rotation of the production set', async () => {
    await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: 'Signing keys' }).click()]);
    expect(await page.title()).toBe('Signing keys · epic-connect');
    for (const environment of ['sandbox', 'production'] as const) {
      expect(await page.locator(`#jwks-url-${environment}`).textContent()).toBe(jwksUrl(environment));
      await page.getByRole('button', { name: `Copy the ${environment} JWK Set URL` }).click();
      expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(jwksUrl(environment));
      expect(await rowsIn('active', environment).count()).toBe(2);
      expect(await rowsIn('next', environment).count()).toBe(0);
    }

    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Start production rotation' }).click(),
    ]);
    expect(new URL(page.url()).pathname).toBe('/admin/keys');
    // The flash is read from the session by the page the redirect leads to, however fast the browser follows it.
    const text = await page.locator('.flashes .alert.success').textContent();
    expect(text).toMatch(/^Published new production signing keys: .+signs from /);
    expect(text).toContain('RS384 ');
    expect(text).toContain('ES384 ');
    expect(await rowsIn('next', 'production').count()).toBe(2);
    expect(await rowsIn('next', 'sandbox').count()).toBe(0);
    for (const row of await rowsIn('next', 'production').all()) {
      expect(await row.locator('.badge').textContent()).toBe('Next');
      expect(await row.locator('.next-step').textContent()).toMatch(
        /^Promotes at \d{4}-\d\d-\d\d \d\d:\d\d UTC/,
      );
      // The kid is shortened on screen only: the cell's text is the whole thumbprint.
      const kid = await row.getAttribute('data-kid');
      expect(await row.locator('code.kid').textContent()).toBe(kid);
    }
    const published = (await (await fetch(jwksUrl('production'))).json()) as { keys: unknown[] };
    expect(published.keys).toHaveLength(4);
    const sandbox = (await (await fetch(jwksUrl('sandbox'))).json()) as { keys: unknown[] };
    expect(sandbox.keys).toHaveLength(2);
    await screenshot(page, '12-signing-keys');
  });

  it('2. private_key_jwt hides the secret and shows the JWK Set URL; backend needs system scopes', async () => {
    await page.goto(`${base}/admin/epic/registration?org=${orgId}`);
    const authMethod = page.getByLabel('Client authentication');
    const connection = page.getByLabel('Connection', { exact: true });
    const secret = page.locator('#clientSecret');
    const jwks = page.locator('#jwks-url');
    expect(await secret.isVisible()).toBe(true);
    expect(await jwks.isVisible()).toBe(false);

    await authMethod.selectOption('private_key_jwt');
    expect(await secret.isVisible()).toBe(false);
    expect(await jwks.isVisible()).toBe(true);
    expect(await jwks.textContent()).toBe(jwksUrl('sandbox'));
    // Each environment has its own keys: the URL follows the Environment field before it is saved.
    const environment = page.getByLabel('Environment', { exact: true });
    await environment.selectOption('production');
    expect(await jwks.textContent()).toBe(jwksUrl('production'));
    expect(await page.locator('#jwks-url-help [data-jwks-environment]').textContent()).toBe('production');
    await environment.selectOption('sandbox');
    expect(await jwks.textContent()).toBe(jwksUrl('sandbox'));
    expect(await page.getByLabel('Signing key').isVisible()).toBe(true);
    await authMethod.selectOption('client_secret_basic');
    expect(await secret.isVisible()).toBe(true);

    // A backend service authenticates only with a JWT: choosing it selects private_key_jwt.
    await connection.selectOption('backend');
    expect(await authMethod.inputValue()).toBe('private_key_jwt');
    expect(await secret.isVisible()).toBe(false);
    expect(await jwks.isVisible()).toBe(true);

    const client = epic.registerClient({ audience: 'backend', jwksUrl: jwksUrl() });
    await page.getByLabel('Client ID').fill(client.clientId);
    await page.getByLabel('FHIR base URL').fill(epic.fhirBase);
    await page.getByLabel('Data scopes').fill('system/Patient.read');
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Save' }).click()]);
    expect(page.url()).toBe(`${base}/admin/epic/registration?org=${orgId}&saved=1`);
    // Saving runs the connection test a second later; wait for its answer, then close it.
    await page.locator('#test-summary').waitFor({ timeout: 30_000 });
    await page.getByRole('button', { name: 'Close' }).click();
    expect(await connection.inputValue()).toBe('backend');
    expect(await authMethod.inputValue()).toBe('private_key_jwt');
    expect(await page.getByLabel('Data scopes').inputValue()).toBe('system/Patient.read');
    expect(await page.getByLabel('Client ID').inputValue()).toBe(client.clientId);
    expect(await secret.isVisible()).toBe(false);
    expect(await jwks.isVisible()).toBe(true);
    expect(await page.locator('.field-error').count()).toBe(0);
    await screenshot(page, '13-registration-private-key-jwt');

    // user/ scopes are a sign-in's: refused beside the Data scopes field, nothing saved.
    await page.getByLabel('Data scopes').fill('user/Patient.read');
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Save' }).click()]);
    expect(await page.locator('.alert.error[role="alert"]').first().textContent()).toContain(
      'Nothing was saved',
    );
    expect(await page.locator('#scopes-error').textContent()).toContain('system/ scopes only');
    expect(await page.getByLabel('Data scopes').getAttribute('aria-invalid')).toBe('true');
    expect(await page.getByLabel('Data scopes').getAttribute('aria-describedby')).toContain('scopes-error');
    expect(await secret.isVisible()).toBe(false);
    const org = await t.dataSource.query<{ epic_scopes: string }[]>(
      `SELECT epic_scopes FROM organization WHERE id = $1`,
      [orgId],
    );
    expect(org[0].epic_scopes).toBe('system/Patient.read');

    // Connect now: the token is obtained at once (the fake checks the assertion against the app's
    // JWK Set), and the page says so and shows the connection.
    await page.goto(`${base}/admin/epic/registration?org=${orgId}`);
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Connect now (backend service)' }).click(),
    ]);
    expect(page.url()).toBe(`${base}/admin/epic/registration?org=${orgId}`);
    expect(await page.locator('.flashes').textContent()).toContain('Connected to Epic as a backend service');
    await page.locator('#status', { hasText: 'Connected' }).waitFor();
    expect(epic.requests('token').at(-1)).toMatchObject({ grantType: 'client_credentials', status: 200 });
    await screenshot(page, '14-backend-connected');
  });
});
