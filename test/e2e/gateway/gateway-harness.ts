import { randomUUID } from 'node:crypto';

import { authorizeAtFake, CALLBACK, registeredOrganization, SignedIn } from 'test/factories/epic-connection';
import { FakeEpic, SEED } from 'test/fakes/epic';
import { TestApp } from 'test/setup/test-app';

// The key helpers live with the other factories; the gateway's tests have always imported them here.
export { createApiKey, revokeApiKey } from 'test/factories/api-keys';

/** Read and write scopes on the fake's seeded types (SMART v1), for a connection that may write. */
export const WRITE_SCOPES = ['Patient', 'Observation', 'Encounter', 'Practitioner'].flatMap((type) => [
  `user/${type}.read`,
  `user/${type}.write`,
]);

export interface GatewayOrganization {
  orgId: string;
  slug: string;
  admin: SignedIn;
  clientId: string;
  /** `/gateway/<slug>/fhir`: the gateway base as a path on the test app. */
  base: string;
}

/**
 * An organization connected to the fake through the whole flow, its client allowed to read and
 * write the seeded types (`scopes` to change them; `connect: false` leaves it registered only).
 * `redirectUri`: the app's callback when PUBLIC_BASE_URL is not the default.
 */
export async function gatewayOrganization(
  t: TestApp,
  epic: FakeEpic,
  options: { scopes?: string[]; connect?: boolean; redirectUri?: string } = {},
): Promise<GatewayOrganization> {
  const secret = `gw-${randomUUID()}`;
  const redirectUri = options.redirectUri ?? CALLBACK;
  const registered = await registeredOrganization(t, epic, { secret, redirectUri });
  // Epic grants the scopes of the registration (docs/epic-and-smart.md §8): register the client
  // again, same id and secret, with the ones the test needs, before anyone signs in.
  epic.registerClient({
    clientId: registered.clientId,
    secret,
    redirectUris: [redirectUri],
    persistentAccess: true,
    scopes: options.scopes ?? WRITE_SCOPES,
  });
  if (options.connect ?? true) {
    if (redirectUri === CALLBACK) {
      await registered.admin.agent
        .get(await authorizeAtFake(epic, registered.admin, registered.orgId))
        .expect(303);
    } else {
      const start = await registered.admin.agent
        .get('/fhir/epic-authorize')
        .query({ org: registered.orgId })
        .expect(303);
      const back = new URL((await epic.authorizeAsUser(start.headers.location)).location!);
      await registered.admin.agent.get(back.pathname + back.search).expect(303);
    }
  }
  const [{ slug }] = await t.dataSource.query<{ slug: string }[]>(
    'SELECT slug FROM organization WHERE id = $1',
    [registered.orgId],
  );
  return { ...registered, slug, base: `/gateway/${slug}/fhir` };
}

/**
 * A provider's EHR launch in the organization (the fake's seeded practitioner, unless another is
 * given): returns the user the launch signed in, who now has a live connection of their own.
 */
export async function providerLaunch(
  t: TestApp,
  epic: FakeEpic,
  org: Pick<GatewayOrganization, 'slug' | 'clientId'>,
  practitioner: string = SEED.practitioner,
): Promise<{ userId: string; credentialId: string }> {
  const agent = t.agent();
  const { iss, launch } = epic.launchContext({ patient: SEED.camila, practitioner, clientId: org.clientId });
  const start = await agent.get('/fhir/epic-launch').query({ iss, launch, org: org.slug }).expect(303);
  const back = new URL((await epic.authorizeAsUser(start.headers.location)).location!);
  const done = await agent.get(back.pathname + back.search).expect(303);
  const credentialId = /^\/launch\/provider\/([0-9a-f-]{36})$/.exec(String(done.headers.location))?.[1];
  if (!credentialId) throw new Error(`The launch ended at ${String(done.headers.location)}`);
  const [{ userId }] = await t.dataSource.query<{ userId: string }[]>(
    'SELECT user_id AS "userId" FROM epic_credential WHERE id = $1',
    [credentialId],
  );
  return { userId, credentialId };
}

/** An OperationOutcome's first issue, as the gateway answers its own errors. */
export function issueOf(body: unknown): {
  severity: string;
  code: string;
  diagnostics: string;
  details?: unknown;
} {
  const outcome = body as {
    resourceType?: string;
    issue?: { severity: string; code: string; diagnostics: string }[];
  };
  if (outcome.resourceType !== 'OperationOutcome' || !outcome.issue?.[0]) {
    throw new Error(`not an OperationOutcome: ${JSON.stringify(body)}`);
  }
  return outcome.issue[0];
}
