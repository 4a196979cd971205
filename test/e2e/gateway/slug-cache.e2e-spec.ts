import { Role } from 'src/users/user.types';

import { signIn, TestFactory } from 'test/factories';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

import { createApiKey, gatewayOrganization } from './gateway-harness';

/**
 * The gateway remembers which organization a slug names for a few seconds; an organization deleted
 * on this instance is forgotten at once (`organizations.deleted`), so another organization that
 * takes its slug is served under it at once.
 */
describe('FHIR gateway: the slug of a deleted organization', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let root: { agent: ReturnType<TestApp['agent']>; csrf: string };

  beforeAll(async () => {
    [t, epic] = await Promise.all([createTestApp(), startFakeEpic()]);
    root = await signIn(t, await new TestFactory(t).user(Role.RootAdmin, null));
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });

  const read = (base: string, key: string) =>
    t.http().get(`${base}/Patient/${SEED.camila}`).set('Authorization', `Bearer ${key}`);

  it('names the organization that took the slug at once, not the deleted one it remembered', async () => {
    const deleted = await gatewayOrganization(t, epic);
    const taker = await gatewayOrganization(t, epic);
    const takerKey = (await createApiKey(taker)).secret;
    await read(deleted.base, (await createApiKey(deleted)).secret).expect(200); // the slug is remembered

    await root.agent.delete(`/api/organizations/${deleted.orgId}`).set('x-csrf-token', root.csrf).expect(204);
    await root.agent
      .patch(`/api/organizations/${taker.orgId}`)
      .set('x-csrf-token', root.csrf)
      .send({ slug: deleted.slug })
      .expect(200);

    const res = await read(deleted.base, takerKey).expect(200);
    expect(res.body).toMatchObject({ resourceType: 'Patient', id: SEED.camila });
  });
});
