import { HttpService } from '@nestjs/axios';

import { blockedAddressError } from 'src/outbound/outbound-guard';

import { registeredOrganization } from 'test/factories/epic-connection';
import { FakeEpic, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

/**
 * OUTBOUND_ADDRESS_POLICY=public (production's default): an administrator-given FHIR base that
 * resolves to a private or reserved address is never contacted (SSRF), unless its network is
 * allowed. The fake Epic listens on 127.0.0.1, which is such an address.
 */
describe('outbound address policy', () => {
  let t: TestApp;
  let epic: FakeEpic;

  beforeAll(async () => {
    [t, epic] = await Promise.all([
      createTestApp({ env: { OUTBOUND_ADDRESS_POLICY: 'public' } }),
      startFakeEpic(),
    ]);
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });

  it('refuses a loopback FHIR server: discovery says why, and nothing reaches it', async () => {
    const { orgId, admin } = await registeredOrganization(t, epic);
    epic.clearLog();

    const test = await admin.agent
      .post('/fhir/test-epic-connection')
      .set('x-csrf-token', admin.csrf)
      .send({ org: orgId })
      .expect(200);
    const discovery = (
      test.body.configuration.steps as { name: string; ok: boolean; message: string }[]
    ).find((s) => s.name === 'discovery');
    expect(discovery).toMatchObject({ ok: false });
    expect(discovery!.message).toMatch(/127\.0\.0\.1 is in a private or reserved network/);

    const start = await admin.agent.get('/fhir/epic-authorize').query({ org: orgId });
    expect(start.status).not.toBe(303); // no redirect anywhere
    expect(epic.requests()).toEqual([]);

    // FHIR calls use the same guard (the FhirClient's own axios instance).
    const http = t.app.get(HttpService, { strict: false });
    const error = await http.axiosRef.get(`${epic.fhirBase}/metadata`).then(
      () => null,
      (e: unknown) => e,
    );
    expect(blockedAddressError(error)?.message).toMatch(/private or reserved network/);
    expect(epic.requests()).toEqual([]);
  });
});
