import { FhirClientError, FhirErrorKind } from 'src/fhir-client/fhir-client.errors';
import { FhirClientService } from 'src/fhir-client/fhir-client.service';

import { connectedOrganization, setStoredExpiry } from 'test/factories/epic-connection';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

/** With CREDENTIAL_CACHE_MS on, as in production: lookups are shared, but never past a change. */
describe('FhirClient credential cache', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let fhir: FhirClientService;

  beforeAll(async () => {
    [t, epic] = await Promise.all([
      createTestApp({ env: { CREDENTIAL_CACHE_MS: '60000' } }),
      startFakeEpic(),
    ]);
    fhir = t.app.get(FhirClientService);
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });

  const read = (orgId: string) => fhir.forOrganization(orgId).read('Patient', SEED.camila);
  const refreshes = () => epic.calls('token', { grantType: 'refresh_token' });

  it('reuses the lookup: a change written by another instance is not seen within the interval', async () => {
    const { orgId } = await connectedOrganization(t, epic);
    await read(orgId);
    await setStoredExpiry(t, orgId, -60_000); // as if another instance had stored an older expiry
    const before = refreshes();
    await read(orgId);
    expect(refreshes()).toBe(before); // still the cached, valid token
  });

  it('forgets at once what this instance changes: a disconnect stops the next call', async () => {
    const { orgId, admin } = await connectedOrganization(t, epic);
    await read(orgId);
    await admin.agent
      .post('/fhir/epic-disconnect')
      .set('x-csrf-token', admin.csrf)
      .send({ org: orgId })
      .expect(200);
    const error = await read(orgId).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FhirClientError);
    expect((error as FhirClientError).kind).toBe(FhirErrorKind.NotConnected);
  });

  it('reads afresh after a 401, and caches the refreshed credential', async () => {
    const { orgId } = await connectedOrganization(t, epic);
    await read(orgId);
    epic.expireAccessTokens();
    const before = refreshes();
    await read(orgId); // 401, refresh, replay
    await Promise.all(Array.from({ length: 20 }, () => read(orgId)));
    expect(refreshes()).toBe(before + 1);
  });
});
