/// <reference lib="dom" />
import { Browser, BrowserContext, Page } from 'playwright-core';

import { ApiKeysService } from 'src/api-keys/api-keys.service';
import { Role } from 'src/users/user.types';

import { TestFactory } from 'test/factories';
import { TestApp } from 'test/setup/test-app';

import { screenshot, signInWithBrowser, startBrowserHarness } from './harness';

/**
 * An org admin's API keys page in Chromium: create a key, copy it from the one page that shows
 * it, change it with its Edit form, and revoke it (after confirming). One browser, one app.
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
    await signInWithBrowser(page, base, admin);
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

  it('2. edits the key: a wrong value comes back with its message, then the change is saved', async () => {
    const keyId = key.slice(5, 17);
    const form = page.locator(`#edit-${keyId}`);
    expect(await form.getAttribute('open')).toBeNull();
    await form.locator('summary').click();
    const name = page.locator(`#edit-${keyId}-name`);
    expect(await name.isVisible()).toBe(true);
    expect(await name.inputValue()).toBe('Lab interface');
    expect(await page.locator(`#edit-${keyId}-resourceTypes`).inputValue()).toBe('Patient, Observation');

    await name.fill('');
    await page.locator(`#edit-${keyId}-resourceTypes`).fill('Patient Encounter');
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: `Save changes to Lab interface (ecgk_${keyId})` }).click(),
    ]);
    // Comes back open, with the message beside the name and what was typed.
    expect(await page.locator(`#edit-${keyId}`).getAttribute('open')).toBe('');
    expect(await page.locator(`#edit-${keyId}-name-error`).textContent()).toBe(
      'name must be 1 to 100 characters',
    );
    expect(await page.locator(`#edit-${keyId}-name`).getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator(`#edit-${keyId}-resourceTypes`).inputValue()).toBe('Patient Encounter');
    expect(await keys().authenticate(key)).toMatchObject({ name: 'Lab interface' });
    // The open form drops down below its row: the row keeps about its closed height, and the fields
    // get their room (not a stack squeezed into the narrow actions column).
    const rowBox = await page.locator(`tr[data-key-id="${keyId}"]`).boundingBox();
    const formBox = await page.locator(`#edit-${keyId} form`).boundingBox();
    expect(rowBox!.height).toBeLessThan(120);
    expect(formBox!.width).toBeGreaterThanOrEqual(300);
    expect(formBox!.y).toBeGreaterThanOrEqual(rowBox!.y + rowBox!.height - 1);
    expect(await page.locator(`#edit-${keyId}-name`).isVisible()).toBe(true);
    await screenshot(page, '15a-api-key-edit-refused');

    await page.locator(`#edit-${keyId}-name`).fill('Lab feed');
    await page.locator(`#edit-${keyId}-access`).selectOption('read');
    await page.locator(`#edit-${keyId}-userConnections`).uncheck();
    await page.locator(`#edit-${keyId}-expiresAt`).fill('2099-12-31');
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: `Save changes to Lab interface (ecgk_${keyId})` }).click(),
    ]);
    expect(new URL(page.url()).pathname).toBe(`/admin/organizations/${orgId}/api-keys`);
    expect(await page.locator('.flashes .alert.success').textContent()).toContain(
      `Saved ecgk_${keyId}… (Lab feed): changed name, access, resource types, users' connections, expiry.`,
    );
    const row = page.locator(`tr[data-key-id="${keyId}"]`);
    expect(await row.locator('.name').textContent()).toBe('Lab feed');
    expect(await row.textContent()).toContain('Patient, Encounter');
    expect(await row.textContent()).toContain('2099-12-31 00:00 UTC');
    expect(await page.content()).not.toContain(key.slice(18)); // the secret is never shown again
    expect(await keys().authenticate(key)).toMatchObject({
      name: 'Lab feed',
      access: 'read',
      resourceTypes: ['Patient', 'Encounter'],
      userConnections: false,
    });
    await screenshot(page, '15b-api-key-edited');
  });

  it('3. asks before revoking, then revokes: the key is refused at once', async () => {
    const keyId = key.slice(5, 17);
    const revoke = page.getByRole('button', { name: `Revoke Lab feed (ecgk_${keyId})` });

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
    expect(question).toContain(`Revoke the key ecgk_${keyId}… (Lab feed)?`);
    expect(await page.locator('.flashes .alert.success').textContent()).toMatch(
      /^Revoked ecgk_[a-z0-9]{12}… \(Lab feed\)/,
    );
    const row = page.locator(`tr[data-key-id="${keyId}"]`);
    expect(await row.getAttribute('data-state')).toBe('revoked');
    expect(await row.locator('.badge').textContent()).toBe('Revoked');
    expect(await row.getByRole('button', { name: /Revoke/ }).count()).toBe(0);
    expect(await page.locator(`#edit-${keyId}`).count()).toBe(0); // a revoked key is not editable
    expect(await accepted(key)).toBe(false);
    await screenshot(page, '16-api-key-revoked');
  });

  it('4. the registration page copies the FHIR base URL and the curl example, and links to the keys page', async () => {
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
