import { Role } from 'src/users/user.types';

import { FakeEpic } from 'test/fakes/epic';
import { TestApp } from 'test/setup/test-app';

import { signIn, TestFactory } from './index';

/** The redirect URI the test app registers at the fake (PUBLIC_BASE_URL default + callback path). */
export const CALLBACK = 'http://localhost:3000/fhir/epic-callback';

export type SignedIn = Awaited<ReturnType<typeof signIn>>;

export interface ConnectionOptions {
  /** The client secret registered at the fake (default: the fake's random one). */
  secret?: string;
  persistentAccess?: boolean;
  /** How the fake issues refresh tokens (`static` by default with persistent access). */
  refreshMode?: 'none' | 'static' | 'rolling';
  tokenAuthMethod?: string;
  scopes?: string;
  scopeSyntax?: 'v1' | 'v2';
  /** The fake client's audience: `patient` for a MyChart app (fhirUser Patient/…). */
  audience?: 'patient' | 'provider';
  /** The redirect URI registered at the fake (default: CALLBACK, the test app's). */
  redirectUri?: string;
  /**
   * private_key_jwt: the JWK Set URL registered at the fake (the test app's own, when it listens:
   * `/.well-known/jwks-sandbox.json` for a sandbox organization, `/.well-known/jwks.json` for a
   * production one). The client then has no secret, and the organization is saved with private_key_jwt.
   */
  jwksUrl?: string;
  /** The organization's environment (default sandbox): with private_key_jwt, which key set signs. */
  environment?: 'sandbox' | 'production';
  assertionAlg?: 'RS384' | 'ES384';
  /** A backend-service organization (implies private_key_jwt and a `backend` client at the fake). */
  backend?: { mappedToUser?: boolean };
}

/**
 * An organization whose Epic client is registered at the fake and saved through the API, with its
 * org admin signed in.
 */
export async function registeredOrganization(
  t: TestApp,
  epic: FakeEpic,
  options: ConnectionOptions = {},
): Promise<{ orgId: string; admin: SignedIn; clientId: string }> {
  const factory = new TestFactory(t);
  const org = await factory.organization();
  const client = epic.registerClient({
    redirectUris: [options.redirectUri ?? CALLBACK],
    ...(options.secret ? { secret: options.secret } : {}),
    persistentAccess: options.persistentAccess ?? true,
    ...(options.refreshMode ? { refreshMode: options.refreshMode } : {}),
    ...(options.audience ? { audience: options.audience } : {}),
    ...(options.jwksUrl ? { jwksUrl: options.jwksUrl } : {}),
    ...(options.backend ? { audience: 'backend', mappedToUser: options.backend.mappedToUser ?? true } : {}),
  });
  const jwt = options.jwksUrl !== undefined;
  const admin = await signIn(t, await factory.user(Role.OrgAdmin, org.id));
  // Binding an organization to a client that authenticates with the service's key, and sharing a
  // FHIR base another organization already uses, are root's to do.
  const [{ shared }] = await t.dataSource.query<{ shared: boolean }[]>(
    `SELECT EXISTS (SELECT 1 FROM organization
                     WHERE epic_client_id IS NOT NULL AND lower(rtrim(fhir_base_url, '/')) = lower($1)) AS shared`,
    [epic.fhirBase],
  );
  const registrar = jwt || shared ? await signIn(t, await factory.user(Role.RootAdmin, null)) : admin;
  await registrar.agent
    .put(`/api/organizations/${org.id}/epic-client`)
    .set('x-csrf-token', registrar.csrf)
    .send({
      clientId: client.clientId,
      ...(jwt ? {} : { clientSecret: client.secret }),
      environment: options.environment ?? 'sandbox',
      fhirBaseUrl: epic.fhirBase,
      ...(jwt ? { tokenAuthMethod: 'private_key_jwt' } : {}),
      ...(options.tokenAuthMethod ? { tokenAuthMethod: options.tokenAuthMethod } : {}),
      ...(options.assertionAlg ? { assertionAlg: options.assertionAlg } : {}),
      ...(options.backend ? { connectionMode: 'backend' } : {}),
      ...(options.scopes ? { scopes: options.scopes } : {}),
      ...(options.scopeSyntax ? { scopeSyntax: options.scopeSyntax } : {}),
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
  options: ConnectionOptions = {},
): Promise<{ orgId: string; admin: SignedIn; clientId: string }> {
  const registered = await registeredOrganization(t, epic, options);
  await registered.admin.agent
    .get(await authorizeAtFake(epic, registered.admin, registered.orgId))
    .expect(303);
  return registered;
}

/** Moves the stored access token's expiry to `msFromNow` (negative: already expired), as time passing would. */
export async function setStoredExpiry(t: TestApp, orgId: string, msFromNow: number): Promise<void> {
  await t.dataSource.query(
    // The token keeps its lifetime (issued_at moves too), as when time really passes.
    `UPDATE epic_credential SET expires_at = $2, issued_at = $2::timestamptz - (expires_at - issued_at)
      WHERE organization_id = $1 AND user_id IS NULL`,
    [orgId, new Date(Date.now() + msFromNow)],
  );
}

/** The organization's connection row (Connections module) and its stored credential (metadata only). */
export async function connectionRow(
  t: TestApp,
  orgId: string,
): Promise<{
  isConnected: boolean;
  lastError: string | null;
  lastErrorAt: Date | null;
  lastSync: Date | null;
  tokenExpiry: Date | null;
  credential: { id: string; version: number; expiresAt: Date; accessTokenEnc: string } | null;
}> {
  const [state] = await t.dataSource.query<
    {
      isConnected: boolean;
      lastError: string | null;
      lastErrorAt: Date | null;
      lastSync: Date | null;
      tokenExpiry: Date | null;
    }[]
  >(
    `SELECT is_connected AS "isConnected", last_error AS "lastError", last_error_at AS "lastErrorAt",
            last_sync AS "lastSync", token_expiry AS "tokenExpiry"
       FROM organization_connection WHERE organization_id = $1`,
    [orgId],
  );
  // No row: the organization never had a connection.
  const org = state ?? {
    isConnected: false,
    lastError: null,
    lastErrorAt: null,
    lastSync: null,
    tokenExpiry: null,
  };
  const [credential] = await t.dataSource.query<
    { id: string; version: number; expiresAt: Date; accessTokenEnc: string }[]
  >(
    `SELECT id, version, expires_at AS "expiresAt", access_token_enc AS "accessTokenEnc"
       FROM epic_credential WHERE organization_id = $1 AND user_id IS NULL`,
    [orgId],
  );
  return { ...org, credential: credential ?? null };
}
