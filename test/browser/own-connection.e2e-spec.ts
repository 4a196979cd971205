/// <reference lib="dom" />
import { Browser, Page } from 'playwright-core';

import { OwnConnectionNoticesService } from 'src/connection-health/own-connection-notices.service';
import { ConnectionsService } from 'src/connections/connections.service';
import { TokenStoreService } from 'src/connections/token-store.service';
import { MailPreferencesService } from 'src/mail/mail-preferences.service';
import { Role } from 'src/users/user.types';
import { UsersService } from 'src/users/users.service';

import { TestFactory, TestUser } from 'test/factories';
import { screenshot, signInWithBrowser, startBrowserHarness } from 'test/browser/harness';
import { TestApp } from 'test/setup/test-app';

/**
 * A patient's "My connected accounts" in Chromium: the notice that their connection with the
 * organization ended, with Connect again, and the email form (address and choice), saved with the
 * form's CSRF token as a real browser sends it, and a bad address explained beside the field.
 */
jest.setTimeout(120_000);

describe("a patient's ended connection and email form in Chromium", () => {
  let t: TestApp;
  let browser: Browser;
  let base: string;
  let page: Page;
  let patient: TestUser;
  let slug: string;

  beforeAll(async () => {
    ({ t, base, browser } = await startBrowserHarness());
    const factory = new TestFactory(t);
    const org = await factory.organization('Riverside Health');
    slug = org.slug;
    patient = await factory.user(Role.Patient, org.id);
    // Their connection, stored and then ended by the server as the refresher does it (no tokens left).
    const credential = await t.dataSource.transaction((manager) =>
      t.app.get(ConnectionsService).connectUser(manager, {
        organizationId: org.id,
        userId: patient.id,
        purpose: 'patient',
        fhirBaseUrl: 'https://fhir.example.test/api/FHIR/R4',
        tokens: {
          accessToken: 'access-token-of-the-test',
          refreshToken: 'refresh-token-of-the-test',
          expiresAt: new Date(Date.now() + 3600_000),
          issuedAt: new Date(),
          refreshExpiresAt: null,
          scopes: ['patient/Patient.read'],
          patientId: 'pat-1',
          encounterId: null,
        },
        fhirUser: 'Patient/pat-1',
        needPatientBanner: null,
        smartStyleUrl: null,
      }),
    );
    await t.dataSource.transaction((manager) =>
      t.app
        .get(TokenStoreService)
        .endUserCredential(manager, credential, 'Epic refused the refresh (invalid_grant).'),
    );
    const ended = await t.app.get(TokenStoreService).findById(credential.id);
    await t.app.get(OwnConnectionNoticesService).record([ended!]);

    page = await (await browser.newContext()).newPage();
    await signInWithBrowser(page, base, patient);
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('shows the notice with Connect again, and saves an address and the choice', async () => {
    await page.goto(`${base}/launch/patient`);
    const notice = page.locator('.own-connection-ended');
    expect(await notice.textContent()).toContain('Your connection with Riverside Health ended');
    expect(await notice.getByRole('link', { name: 'Connect again' }).getAttribute('href')).toBe(
      `/fhir/epic-connect?org=${slug}`,
    );
    expect(await page.getByLabel('Email me when my connection ends').inputValue()).toBe('immediate');

    await page.getByLabel('Your email address').fill('river.patient@example.org');
    await page.getByLabel('Email me when my connection ends').selectOption('off');
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Save' }).click()]);
    expect(new URL(page.url()).pathname).toBe('/launch/patient');
    expect(await page.getByRole('status').textContent()).toContain('Saved.');
    expect(await page.getByLabel('Your email address').inputValue()).toBe('river.patient@example.org');
    expect(await page.getByLabel('Email me when my connection ends').inputValue()).toBe('off');
    expect((await t.app.get(UsersService).contactEmailOf(patient.id)).address).toBe(
      'river.patient@example.org',
    );
    expect(await t.app.get(MailPreferencesService).modeOf(patient.id, 'own-connection')).toBe('off');
    await screenshot(page, 'patient-own-connection');
  });

  it('explains a bad address beside the field and keeps what was typed', async () => {
    await page.goto(`${base}/launch/patient`);
    // type="email" would stop the browser from sending it: the server's check is what is tested.
    await page.getByLabel('Your email address').evaluate((input) => input.setAttribute('type', 'text'));
    await page.getByLabel('Your email address').fill('river at example');
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Save' }).click()]);
    expect(await page.locator('#contactEmail-error').textContent()).toContain('That is not an email address');
    expect(await page.getByLabel('Your email address').inputValue()).toBe('river at example');
    expect((await t.app.get(UsersService).contactEmailOf(patient.id)).address).toBe(
      'river.patient@example.org',
    );
  });
});
