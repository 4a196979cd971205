import { connectedOrganization } from 'test/factories/epic-connection';
import { FakeEpic, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

/**
 * OUTBOUND_ADDRESS_POLICY=public with the fake's network allowed (an on-premises Epic on a private
 * network): the whole connection goes through the guarded paths (discovery, token endpoint,
 * id_token keys) and works.
 */
describe('outbound address policy with an allowed network', () => {
  let t: TestApp;
  let epic: FakeEpic;

  beforeAll(async () => {
    [t, epic] = await Promise.all([
      createTestApp({ env: { OUTBOUND_ADDRESS_POLICY: 'public', OUTBOUND_ALLOWED_NETWORKS: '127.0.0.0/8' } }),
      startFakeEpic(),
    ]);
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });

  it('connects through the guarded paths when the network is allowed (discovery, token, id_token keys)', async () => {
    const { orgId, admin } = await connectedOrganization(t, epic);
    const status = await admin.agent.get('/fhir/epic-status').query({ org: orgId }).expect(200);
    expect(status.body).toMatchObject({ state: 'connected' });
    expect(epic.calls('token')).toBeGreaterThan(0);
  });
});
