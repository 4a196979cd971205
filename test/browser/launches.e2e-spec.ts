/// <reference lib="dom" />
import { Browser } from 'playwright-core';

import { registeredOrganization } from 'test/factories/epic-connection';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { TestApp } from 'test/setup/test-app';

import { screenshot, startBrowserHarness } from './harness';

jest.setTimeout(120_000);

/** The provider EHR launch and the patient standalone launch, end to end in Chromium. */
describe('launches in Chromium', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    [{ t, base, browser }, epic] = await Promise.all([
      startBrowserHarness(),
      startFakeEpic({ ehrLaunchEndpoint: true }),
    ]);
  });
  afterAll(async () => {
    await browser?.close();
    await epic?.close();
    await t?.close();
  });

  const slugOf = async (orgId: string) =>
    (await t.dataSource.query<{ slug: string }[]>('SELECT slug FROM organization WHERE id = $1', [orgId]))[0]
      .slug;

  it('a provider launched from Epic lands on the patient, without a login prompt', async () => {
    const { orgId, clientId } = await registeredOrganization(t, epic, {
      redirectUri: `${base}/fhir/epic-callback`,
      scopes: 'user/Patient.read user/Encounter.read',
    });
    // Two organizations share the fake's FHIR base here: the launch URL names ours.
    const launchUrl = `${base}/fhir/epic-launch?org=${await slugOf(orgId)}`;
    const context = await browser.newContext();
    const page = await context.newPage();
    const server = new URL(epic.authorizeUrl).origin;
    const start = `${server}/interconnect-fhir-oauth/fake-epic/ehr-launch?${new URLSearchParams({
      launch_url: launchUrl,
      patient: SEED.camila,
      encounter: SEED.camilaEncounter,
      client_id: clientId,
    }).toString()}`;
    await page.goto(start);
    await page.waitForURL(/\/launch\/provider\/[0-9a-f-]{36}$/);
    expect(await page.locator('#launch-patient').textContent()).toMatch(/Camila .*Lopez/);
    expect(await page.locator('#launch-encounter').isVisible()).toBe(true);
    expect(await page.title()).toMatch(/Camila .*Launch · epic-connect/);
    await screenshot(page, '10-provider-launch');
    await context.close();
  });

  it('a patient connects their Epic account and sees their summary', async () => {
    const { orgId } = await registeredOrganization(t, epic, {
      redirectUri: `${base}/fhir/epic-callback`,
      audience: 'patient',
      scopes: 'patient/Patient.read patient/Observation.read',
    });
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const page = await context.newPage();
    await page.goto(`${base}/fhir/epic-connect?org=${await slugOf(orgId)}`);
    await page.waitForURL(`${base}/launch/patient`);
    expect(await page.locator('#patient-name').textContent()).toMatch(/Camila .*Lopez/);
    expect(await page.locator('#account-state').textContent()).toContain('Connected');
    await screenshot(page, '11-patient-accounts');

    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Disconnect this account' }).click(),
    ]);
    expect(await page.textContent('main')).toContain('No Epic account is connected');
    await context.close();
  });
});
