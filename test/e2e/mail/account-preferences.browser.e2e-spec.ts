/// <reference lib="dom" />
import { randomUUID } from 'node:crypto';

import { Browser, Page } from 'playwright-core';

import { MailPreferencesService } from 'src/mail/mail-preferences.service';
import { Role } from 'src/users/user.types';

import { TestFactory, TestUser } from 'test/factories';
import { screenshot, signInWithBrowser, startBrowserHarness } from 'test/browser/harness';
import { TestApp } from 'test/setup/test-app';

/**
 * The account page's email choices in Chromium: an org admin picks the daily digest and saves
 * (the form's CSRF token travels as a real browser sends it), then unsubscribes from a link in an
 * email, without being signed in, by pressing the confirmation page's button.
 */
jest.setTimeout(120_000);

describe('email choices in Chromium', () => {
  let t: TestApp;
  let browser: Browser;
  let base: string;
  let page: Page;
  let admin: TestUser;

  beforeAll(async () => {
    ({ t, base, browser } = await startBrowserHarness());
    const factory = new TestFactory(t);
    const orgId = (await factory.organization('Lakeside Clinic')).id;
    admin = await factory.user(Role.OrgAdmin, orgId);
    page = await (await browser.newContext()).newPage();
    await signInWithBrowser(page, base, admin);
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  const stored = () => t.app.get(MailPreferencesService).modeOf(admin.id, 'admin-connections');

  it('saves the daily digest from the account page', async () => {
    await page.goto(`${base}/account`);
    expect(await page.getByLabel('Email me as it happens').isChecked()).toBe(true);
    await page.getByLabel('Once a day, in a digest').check();
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Save email choices' }).click(),
    ]);
    expect(new URL(page.url()).pathname).toBe('/account');
    expect(await page.getByRole('status').textContent()).toContain('Your email choices are saved');
    expect(await page.getByLabel('Once a day, in a digest').isChecked()).toBe(true);
    expect(await stored()).toBe('digest');
    // Each radio button keeps its own size and sits on its label's line (app.css), not stretched
    // to the form's width above its text.
    for (const name of ['Email me as it happens', 'Once a day, in a digest', 'No email']) {
      const radio = (await page.getByLabel(name).boundingBox())!;
      const label = (await page.locator('label', { hasText: name }).boundingBox())!;
      expect([name, radio.width]).toEqual([name, expect.any(Number)]);
      expect(radio.width).toBeLessThan(40);
      expect(label.height).toBeLessThan(2 * radio.height + 16);
      expect(radio.y).toBeGreaterThanOrEqual(label.y - 1);
      expect(radio.y + radio.height).toBeLessThanOrEqual(label.y + label.height + 1);
    }
    await screenshot(page, 'account-email-choices');
  });

  it("unsubscribes from an email's link, signed out, with the confirmation page's button", async () => {
    const link = t.app
      .get(MailPreferencesService)
      .unsubscribeUrl({ userId: admin.id, channel: 'admin-connections', tokenId: randomUUID() });
    const anonymous = await (await browser.newContext()).newPage();
    await anonymous.goto(link);
    expect(await stored()).toBe('digest'); // opening the link changes nothing
    await Promise.all([
      anonymous.waitForNavigation(),
      anonymous.getByRole('button', { name: 'Unsubscribe' }).click(),
    ]);
    expect(await anonymous.getByRole('status').textContent()).toContain('You are unsubscribed');
    expect(await stored()).toBe('off');
  });
});
