import { Role } from 'src/users/user.types';

import { signIn, TestFactory } from 'test/factories';
import { registeredOrganization, SignedIn } from 'test/factories/epic-connection';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

/**
 * EHR launches find their organization by FHIR base (`iss`). An org admin must not be able to take
 * over, or break, another organization's launches by registering its FHIR base.
 */
describe('a FHIR base another organization uses', () => {
  let t: TestApp;
  let epic: FakeEpic;
  let factory: TestFactory;
  let root: SignedIn;

  beforeAll(async () => {
    [t, epic] = await Promise.all([createTestApp(), startFakeEpic()]);
    factory = new TestFactory(t);
    root = await signIn(t, await factory.user(Role.RootAdmin, null));
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });

  const register = (who: SignedIn, orgId: string, fhirBaseUrl: string) =>
    who.agent
      .put(`/api/organizations/${orgId}/epic-client`)
      .set('x-csrf-token', who.csrf)
      .send({ clientId: 'hijacker-client', environment: 'sandbox', fhirBaseUrl });

  const launchUrl = async (who: SignedIn, orgId: string) =>
    (
      (await who.agent.get('/fhir/epic-registration').query({ org: orgId }).expect(200)).body as {
        ehrLaunchUrl: string;
      }
    ).ehrLaunchUrl;

  it("refuses an org admin another organization's FHIR base (403, the field says why); a root admin may", async () => {
    const victim = await registeredOrganization(t, epic);
    const [{ slug }] = await t.dataSource.query<{ slug: string }[]>(
      'SELECT slug FROM organization WHERE id = $1',
      [victim.orgId],
    );
    // The launch URL always names its organization, so it stays right if the server comes to be shared.
    expect(await launchUrl(victim.admin, victim.orgId)).toBe(
      `http://localhost:3000/fhir/epic-launch?org=${slug}`,
    );

    const other = await factory.organization();
    const hijacker = await signIn(t, await factory.user(Role.OrgAdmin, other.id));
    const refused = await register(hijacker, other.id, `${epic.fhirBase}/`).expect(403);
    expect(JSON.stringify(refused.body)).toContain('Another organization already uses this FHIR base URL');

    // The victim's launches still find the victim alone.
    const { iss, launch } = epic.launchContext({ patient: SEED.camila, clientId: victim.clientId });
    await t.agent().get('/fhir/epic-launch').query({ iss, launch }).expect(303);

    // The operator may share the server; a launch must then name its organization, as the URL does.
    await register(root, other.id, epic.fhirBase).expect(200);
    const shared = epic.launchContext({ patient: SEED.camila, clientId: victim.clientId });
    await t.agent().get('/fhir/epic-launch').query({ iss: shared.iss, launch: shared.launch }).expect(400);
    await t
      .agent()
      .get('/fhir/epic-launch')
      .query({ iss: shared.iss, launch: shared.launch, org: slug })
      .expect(303);
  });

  it("lets any org admin choose Epic's public sandbox, which every sandbox organization shares", async () => {
    const first = await factory.organization();
    const second = await factory.organization();
    for (const org of [first, second]) {
      const admin = await signIn(t, await factory.user(Role.OrgAdmin, org.id));
      await admin.agent
        .put(`/api/organizations/${org.id}/epic-client`)
        .set('x-csrf-token', admin.csrf)
        .send({ clientId: 'sandbox-client', environment: 'sandbox' })
        .expect(200);
    }
  });
});
