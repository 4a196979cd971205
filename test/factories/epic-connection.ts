import { Role } from 'src/users/user.types';

import { FakeEpic } from 'test/fakes/epic';
import { TestApp } from 'test/setup/test-app';

import { signIn, TestFactory } from './index';

/** The redirect URI the test app registers at the fake (PUBLIC_BASE_URL default + callback path). */
export const CALLBACK = 'http://localhost:3000/fhir/epic-callback';

export type SignedIn = Awaited<ReturnType<typeof signIn>>;

/**
 * An organization whose Epic client is registered at the fake and saved through the API, with its
 * org admin signed in.
 */
export async function registeredOrganization(
  t: TestApp,
  epic: FakeEpic,
  options: { persistentAccess?: boolean; tokenAuthMethod?: string; scopes?: string } = {},
): Promise<{ orgId: string; admin: SignedIn; clientId: string }> {
  const factory = new TestFactory(t);
  const org = await factory.organization();
  const client = epic.registerClient({
    redirectUris: [CALLBACK],
    persistentAccess: options.persistentAccess ?? true,
  });
  const admin = await signIn(t, await factory.user(Role.OrgAdmin, org.id));
  await admin.agent
    .put(`/api/organizations/${org.id}/epic-client`)
    .set('x-csrf-token', admin.csrf)
    .send({
      clientId: client.clientId,
      clientSecret: client.secret,
      environment: 'sandbox',
      fhirBaseUrl: epic.fhirBase,
      ...(options.tokenAuthMethod ? { tokenAuthMethod: options.tokenAuthMethod } : {}),
      ...(options.scopes ? { scopes: options.scopes } : {}),
    })
    .expect(200);
  return { orgId: org.id, admin, clientId: client.clientId };
}

/** The admin's browser goes to Epic and back: returns the callback path and query Epic redirected to. */
export async function authorizeAtFake(
  epic: FakeEpic,
  admin: SignedIn,
  orgId: string,
  consent?: 'deny',
): Promise<string> {
  const start = await admin.agent.get('/fhir/epic-authorize').query({ org: orgId }).expect(303);
  const result = await epic.authorizeAsUser(start.headers.location, consent ? { consent } : {});
  const back = new URL(result.location!);
  if (back.origin + back.pathname !== CALLBACK) throw new Error(`Epic redirected to ${back.toString()}`);
  return back.pathname + back.search;
}

/** A registered organization connected through the whole flow. */
export async function connectedOrganization(
  t: TestApp,
  epic: FakeEpic,
  options: { persistentAccess?: boolean; tokenAuthMethod?: string } = {},
): Promise<{ orgId: string; admin: SignedIn; clientId: string }> {
  const registered = await registeredOrganization(t, epic, options);
  await registered.admin.agent
    .get(await authorizeAtFake(epic, registered.admin, registered.orgId))
    .expect(303);
  return registered;
}
