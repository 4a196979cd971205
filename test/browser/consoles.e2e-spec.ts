/// <reference lib="dom" />
import { Browser, BrowserContext, Page } from 'playwright-core';

import { Role } from 'src/users/user.types';

import { TestFactory } from 'test/factories';
import { setStoredExpiry } from 'test/factories/epic-connection';
import { testSecret } from 'test/factories/secrets';
import { FakeEpic, startFakeEpic } from 'test/fakes/epic';
import { TestApp } from 'test/setup/test-app';

import { screenshot, signInWithBrowser, startBrowserHarness } from './harness';

/**
 * The consoles in a real browser: Debian's Chromium driven by playwright-core, against the app
 * listening on a port and the fake Epic. Screenshots of each state go to test-artifacts/ (and to
 * docs/screenshots/ with UPDATE_SCREENSHOTS=1).
 */
jest.setTimeout(120_000);

describe('admin consoles in Chromium', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let browser: Browser;
  let context: BrowserContext;
  let base: string;
  const secrets: string[] = [];
  /** Every page's HTML, checked at the end for tokens and secrets. */
  const htmlSeen: string[] = [];

  beforeAll(async () => {
    [{ t, base, browser }, epic] = await Promise.all([startBrowserHarness(), startFakeEpic()]);
    context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  });
  afterAll(async () => {
    await browser?.close();
    await epic?.close();
    await t?.close();
  });

  const shot = screenshot;

  async function remember(page: Page): Promise<void> {
    htmlSeen.push(await page.content());
  }

  let orgId = '';
  let orgAdminEmail = '';
  let orgAdminPassword = '';
  let clientSecret = '';

  it('1. a root admin creates an organization and an org admin', async () => {
    const root = await new TestFactory(t).user(Role.RootAdmin, null);
    const page = await context.newPage();
    await signInWithBrowser(page, base, root);
    expect(new URL(page.url()).pathname).toBe('/admin');
    expect(await page.title()).toBe('Organizations · epic-connect');
    await shot(page, '01-root-console');

    await page.getByLabel('Name', { exact: true }).fill('Browser General Hospital');
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Create', exact: true }).click(),
    ]);
    orgId = new URL(page.url()).pathname.split('/').pop()!;
    expect(await page.locator('h1').textContent()).toContain('Browser General Hospital');
    await shot(page, '02-organization-page');

    orgAdminEmail = `admin-${orgId.slice(0, 8)}@example.org`;
    await page.getByLabel('Email').fill(orgAdminEmail);
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Create org admin' }).click(),
    ]);
    orgAdminPassword = (await page.locator('code').first().textContent())!.trim();
    expect(orgAdminPassword.length).toBeGreaterThanOrEqual(12);
    await page.close();
  });

  it('2. the org admin registers, tests and connects from the registration page', async () => {
    const page = await context.newPage();
    await signInWithBrowser(page, base, { email: orgAdminEmail, password: orgAdminPassword });
    // First sign-in: a new password is required.
    expect(new URL(page.url()).pathname).toBe('/account/password');
    const newPassword = testSecret();
    secrets.push(newPassword);
    await page.getByLabel('Current password').fill(orgAdminPassword);
    await page.getByLabel('New password (at least 12 characters)').fill(newPassword);
    await page.getByLabel('Repeat new password').fill(newPassword);
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Change password' }).click(),
    ]);
    expect(new URL(page.url()).pathname).toBe(`/admin/organizations/${orgId}`);

    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('link', { name: 'Register, test, connect or disconnect' }).click(),
    ]);
    expect(await page.title()).toBe('Epic registration · Browser General Hospital · epic-connect');
    await page.locator('#status-badge').waitFor();
    expect(await page.locator('#status-badge').textContent()).toContain('Not configured');
    await shot(page, '03-registration-empty');

    // Copy the callback URL: it is the absolute /fhir/epic-callback of this service.
    await page.getByRole('button', { name: 'Copy the redirect URI' }).click();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    expect(copied).toBe(`${base}/fhir/epic-callback`);

    const client = epic.registerClient({ redirectUris: [copied], persistentAccess: true });
    clientSecret = client.secret!;
    secrets.push(clientSecret);
    await page.getByLabel('Client ID').fill(client.clientId);
    await page.getByLabel('Client secret').fill(client.secret!);
    await page.getByLabel('FHIR base URL').fill(epic.fhirBase);
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Save' }).click()]);

    // The automatic test runs a second after saving and shows both layers in a dialog.
    const dialog = page.locator('#test-dialog');
    await dialog.locator('[data-layer="configuration"]').waitFor({ timeout: 15_000 });
    expect(await dialog.locator('[data-layer="configuration"]').getAttribute('data-ok')).toBe('true');
    expect(await dialog.locator('[data-layer="live"]').getAttribute('data-ok')).toBe('false'); // not connected yet
    expect(await dialog.textContent()).toMatch(/Not connected to Epic yet/);
    await shot(page, '04-test-before-connect');
    await page.getByRole('button', { name: 'Close' }).click();
    expect(await page.getByLabel('Client secret').getAttribute('placeholder')).toBe(
      'saved (leave blank to keep it)',
    );

    // Connect opens Epic in a new tab; the fake signs in and consents; the tab lands back here.
    const [popup] = await Promise.all([
      page.waitForEvent('popup'),
      page.getByRole('link', { name: 'Connect to Epic' }).click(),
    ]);
    await popup.waitForURL(`${base}/admin/organizations/${orgId}?connected=1`);
    expect(await popup.locator('#connected-flash').textContent()).toContain('Connected to Epic.');
    await remember(popup);
    await popup.close();

    await page.bringToFront();
    await page.waitForFunction(
      () => document.querySelector('#status-badge')?.getAttribute('data-state') === 'connected',
    );
    const status = await page.locator('#status').textContent();
    expect(status).toContain('✅ Connected to Epic');
    expect(status).toMatch(/Access token expires/);
    expect(status).toMatch(/refreshes automatically/);
    await shot(page, '05-connected');

    await page.getByRole('button', { name: 'Test Connection' }).click();
    await page.locator('#test-summary').waitFor();
    expect(await page.locator('#test-summary').textContent()).toBe('The connection works.');
    await shot(page, '06-test-connected');
    await page.getByRole('button', { name: 'Close' }).click();
    await remember(page);
    await page.close();
  });

  it('3. an expired token that cannot be refreshed shows ❌ and Reconnect, which works; Disconnect works', async () => {
    // Persistent access off at Epic from now on: the next connection has no refresh token.
    const page = await context.newPage();
    await page.goto(`${base}/admin/epic/registration?org=${orgId}`);
    const registered = epic.requests('token', { grantType: 'authorization_code' }).at(-1)!.clientId!;
    epic.registerClient({
      clientId: registered,
      secret: clientSecret,
      redirectUris: [`${base}/fhir/epic-callback`],
      persistentAccess: false,
    });
    await t.dataSource.query(
      `UPDATE epic_credential SET refresh_token_enc = NULL WHERE organization_id = $1`,
      [orgId],
    );
    await setStoredExpiry(t, orgId, -60_000);
    epic.expireAccessTokens();
    await page.reload();
    await page.waitForFunction(
      () => document.querySelector('#status-badge')?.getAttribute('data-state') === 'expired',
    );
    expect(await page.locator('#status-badge').textContent()).toContain('❌ Expired');
    expect(await page.locator('#reconnect').isVisible()).toBe(true);
    await shot(page, '07-expired');

    await Promise.all([page.waitForNavigation(), page.locator('#reconnect').click()]);
    expect(new URL(page.url()).pathname).toBe(`/connect_epic/${orgId}`);
    await Promise.all([
      page.waitForURL(`${base}/admin/organizations/${orgId}?connected=1`),
      page.getByRole('button', { name: 'Clear tokens and connect again' }).click(),
    ]);
    await remember(page);
    await page.goto(`${base}/admin/epic/registration?org=${orgId}`);
    await page.waitForFunction(
      () => document.querySelector('#status-badge')?.getAttribute('data-state') === 'connected',
    );
    expect(await page.locator('#status').textContent()).toMatch(
      /no refresh token: reconnect when it expires/,
    );

    page.once('dialog', (d) => void d.accept());
    await page.locator('#disconnect').click();
    await page.waitForFunction(
      () => document.querySelector('#status-badge')?.getAttribute('data-state') === 'not_connected',
    );
    expect(await page.locator('#status-badge').textContent()).toContain('❌ Not connected. Action required.');
    await shot(page, '08-disconnected');
    await remember(page);
    await page.close();
  });

  it('shows validation errors beside the fields, and works at phone width', async () => {
    const page = await context.newPage();
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/admin/epic/registration?org=${orgId}`);
    await page.getByLabel('Client ID').fill('');
    await page.getByLabel('Environment').selectOption('production');
    await page.getByLabel('FHIR base URL').fill('');
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Save' }).click()]);
    expect(await page.locator('#clientId-error').textContent()).toMatch(/clientId/);
    expect(await page.getByLabel('Client ID').getAttribute('aria-invalid')).toBe('true');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(1);
    await shot(page, '09-validation-phone');
    await remember(page);
    await page.close();
  });

  it('a failed status call shows a message, not a spinner', async () => {
    const page = await context.newPage();
    await page.route('**/fhir/epic-status*', (route) => route.abort('connectionrefused'));
    await page.goto(`${base}/admin/epic/registration?org=${orgId}`);
    await page.locator('#status [role="alert"]').waitFor();
    expect(await page.locator('#status').textContent()).toMatch(
      /Could not load the status: .*could not be reached/,
    );
    await page.close();
  });

  it("an org admin cannot open another organization's pages", async () => {
    const other = await new TestFactory(t).organization('Someone Else');
    const page = await context.newPage();
    const registration = await page.goto(`${base}/admin/epic/registration?org=${other.id}`);
    expect(registration!.status()).toBe(404);
    const orgPage = await page.goto(`${base}/admin/organizations/${other.id}`);
    expect(orgPage!.status()).toBe(404);
    await page.close();
  });

  it('no page showed a token or the client secret', () => {
    const tokens = epic
      .requests('token')
      .flatMap((r) => {
        const body = r.responseBody as Record<string, string> | undefined;
        return [body?.access_token, body?.refresh_token, body?.id_token, r.form?.code];
      })
      .filter((v): v is string => !!v);
    expect(tokens.length).toBeGreaterThan(0);
    expect(htmlSeen.length).toBeGreaterThanOrEqual(4);
    for (const html of htmlSeen) {
      for (const secret of [...tokens, ...secrets]) expect(html).not.toContain(secret);
    }
  });
});
