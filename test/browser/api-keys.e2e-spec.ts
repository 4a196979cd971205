/// <reference lib="dom" />
import { Browser, BrowserContext, Page } from 'playwright-core';

import { ApiKeysService } from 'src/api-keys/api-keys.service';
import { Role } from 'src/users/user.types';

import { TestFactory } from 'test/factories';
import { TestApp } from 'test/setup/test-app';

import { screenshot, startBrowserHarness } from './harness';

/**
 * An org admin's API keys page in Chromium: create a key, copy it from the one page that shows
 * it, and revoke it (after confirming). One browser, one app.
 */
jest.setTimeout(120_000);

describe('API keys in Chromium', () => {
  let t: TestApp;
  let browser: Browser;
  let context: BrowserContext;
  let base: string;
  let page: Page;
  let orgId: string;
  let key: string;

  beforeAll(async () => {
    ({ t, base, browser } = await startBrowserHarness());
    context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    const factory = new TestFactory(t);
    orgId = (await factory.organization('Lakeside Clinic')).id;
    const admin = await factory.user(Role.OrgAdmin, orgId);
    page = await context.newPage();
    await page.goto(`${base}/login`);
    await page.getByLabel('Email').fill(admin.email);
    await page.getByLabel('Password').fill(admin.password);
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Sign in' }).click()]);
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  const keys = () => t.app.get(ApiKeysService);
  const accepted = (presented: string) =>
    keys()
      .authenticate(presented)
      .then(
        () => true,
        () => false,
      );

  it('1. creates a key from the organization page and shows it once, with Copy', async () => {
    await page.goto(`${base}/admin/organizations/${orgId}`);
    await Promise.all([page.waitForNavigation(), page.locator('#api-keys-link').click()]);
    expect(new URL(page.url()).pathname).toBe(`/admin/organizations/${orgId}/api-keys`);
    expect(await page.title()).toBe('API keys · epic-connect');

    await page.getByLabel('Name').fill('Lab interface');
    await page.getByLabel('Access').selectOption('read_write');
    await page.getByLabel('Resource types').fill('Patient Observation');
    await page.getByLabel("May act with the organization's users' own connections").check();
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Create key' }).click()]);

    const shown = page.locator('#new-api-key');
    key = (await shown.textContent()) ?? '';
    expect(key).toMatch(/^ecgk_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
    expect(await page.getByRole('alert').first().textContent()).toContain('it will not be shown again');
    await page.getByRole('button', { name: 'Copy the new API key' }).click();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(key);
    expect(await page.getByRole('button', { name: 'Copy the new API key' }).textContent()).toBe('Copied');

    const keyId = key.slice(5, 17);
    const row = page.locator(`tr[data-key-id="${keyId}"]`);
    expect(await row.getAttribute('data-state')).toBe('active');
    expect(await row.locator('.name').textContent()).toBe('Lab interface');
    expect(await row.textContent()).toContain('Patient, Observation');
    expect(await accepted(key)).toBe(true);
    expect(await keys().authenticate(key)).toMatchObject({
      access: 'read_write',
      resourceTypes: ['Patient', 'Observation'],
      userConnections: true,
    });
    await screenshot(page, '15-api-key-created');

    // Coming back to the page shows the key's prefix only.
    await page.goto(`${base}/admin/organizations/${orgId}/api-keys`);
    expect(await page.locator('#new-api-key').count()).toBe(0);
    expect(await page.content()).not.toContain(key.slice(18));
    expect(await page.locator(`tr[data-key-id="${keyId}"] code`).textContent()).toBe(`ecgk_${keyId}_…`);
  });

  it('2. asks before revoking, then revokes: the key is refused at once', async () => {
    const keyId = key.slice(5, 17);
    const revoke = page.getByRole('button', { name: `Revoke Lab interface (ecgk_${keyId})` });

    page.once('dialog', (dialog) => void dialog.dismiss());
    await revoke.click();
    expect(await page.locator(`tr[data-key-id="${keyId}"]`).getAttribute('data-state')).toBe('active');
    expect(await accepted(key)).toBe(true);

    let question = '';
    page.once('dialog', (dialog) => {
      question = dialog.message();
      void dialog.accept();
    });
    await Promise.all([page.waitForNavigation(), revoke.click()]);
    expect(question).toContain(`Revoke the key ecgk_${keyId}… (Lab interface)?`);
    expect(await page.locator('.flashes .alert.success').textContent()).toMatch(
      /^Revoked ecgk_[a-z0-9]{12}… \(Lab interface\)/,
    );
    const row = page.locator(`tr[data-key-id="${keyId}"]`);
    expect(await row.getAttribute('data-state')).toBe('revoked');
    expect(await row.locator('.badge').textContent()).toBe('Revoked');
    expect(await row.getByRole('button', { name: /Revoke/ }).count()).toBe(0);
    expect(await accepted(key)).toBe(false);
    await screenshot(page, '16-api-key-revoked');
  });

  it('3. the registration page copies the FHIR base URL and the curl example, and links to the keys page', async () => {
    await page.goto(`${base}/admin/epic/registration?org=${orgId}`);
    const baseUrl = (await page.locator('#gateway-base-url').textContent()) ?? '';
    expect(baseUrl).toMatch(/^https?:\/\/[^/]+\/gateway\/lakeside-clinic\/fhir$/);
    await page.getByRole('button', { name: 'Copy the gateway base URL' }).click();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(baseUrl);

    await page.getByRole('button', { name: 'Copy the gateway curl example' }).click();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(
      `curl -H "Authorization: Bearer $EPIC_CONNECT_KEY" -H "Accept: application/fhir+json" "${baseUrl}/Patient?name=smith"`,
    );

    await Promise.all([page.waitForNavigation(), page.locator('#api-keys-link').click()]);
    expect(new URL(page.url()).pathname).toBe(`/admin/organizations/${orgId}/api-keys`);
    expect(await page.locator('#gateway-base-url').textContent()).toBe(baseUrl);
    await page.getByRole('button', { name: 'Copy the gateway base URL' }).click();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(baseUrl);
  });
});
