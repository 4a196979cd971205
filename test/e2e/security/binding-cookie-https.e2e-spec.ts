import { EpicEnvironment } from 'src/organizations/organization.types';
import { OrganizationsService } from 'src/organizations/organizations.service';

import { TestFactory } from 'test/factories';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

/**
 * Over https (production), the browser-binding cookie must survive an EHR that frames the app
 * (SameSite=None; Secure) and must not be plantable from a sibling subdomain (`__Host-` prefix).
 */
describe('the browser-binding cookie over https', () => {
  let t: TestApp;
  let epic: FakeEpic;

  beforeAll(async () => {
    [t, epic] = await Promise.all([
      createTestApp({ env: { PUBLIC_BASE_URL: 'https://connect.example.test' } }),
      startFakeEpic(),
    ]);
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });

  it('is __Host-prefixed, Secure, SameSite=None, HttpOnly, Path=/', async () => {
    // Registered by the operator (Secure session cookies do not travel over the test's plain http).
    const org = await new TestFactory(t).organization();
    const { clientId, secret } = epic.registerClient({
      redirectUris: ['https://connect.example.test/fhir/epic-callback'],
    });
    await t.app.get(OrganizationsService).registerEpicClient(null, org.id, {
      clientId,
      clientSecret: secret,
      environment: EpicEnvironment.Sandbox,
      fhirBaseUrl: epic.fhirBase,
    });
    const { iss, launch } = epic.launchContext({ patient: SEED.camila, clientId });
    const res = await t.agent().get('/fhir/epic-launch').query({ iss, launch }).expect(303);
    const cookies = res.headers['set-cookie'] as unknown as string[];
    const binding = cookies.find((c) => c.startsWith('__Host-epic_connect_auth='));
    expect(binding).toBeDefined();
    expect(binding).toMatch(/; Secure/i);
    expect(binding).toMatch(/SameSite=None/i);
    expect(binding).toMatch(/HttpOnly/i);
    expect(binding).toMatch(/Path=\/(;|$)/);
    expect(binding).not.toMatch(/Domain=/i);
    expect(cookies.some((c) => c.startsWith('epic_connect_auth='))).toBe(false);
  });
});
