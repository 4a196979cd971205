import { createHash } from 'node:crypto';

import {
  ConnectionMode,
  EpicEnvironment,
  EpicRegistration,
  TokenAuthMethod,
} from 'src/organizations/organization.types';
import { AuthUser } from 'src/users/user.view';

import { scopesFor } from './launch-scopes';

export type { AuthorizationPurpose } from './entities/pending-authorization.entity';

/** The callback path registered at Epic; the full URI is PUBLIC_BASE_URL + this, matched exactly. */
export const CALLBACK_PATH = '/fhir/epic-callback';
/** SMART App Launch: how long a started authorization may take (state, PKCE verifier, nonce). */
export const PENDING_TTL_MS = 10 * 60_000;

/** The exact redirect URI to register at Epic: built from PUBLIC_BASE_URL, never from the Host header. */
export const redirectUriFor = (publicBaseUrl: string): string => `${publicBaseUrl}${CALLBACK_PATH}`;

/** A pending authorization is stored under this hash of its `state`, never under the state itself. */
export const hashState = (state: string): string => createHash('sha256').update(state).digest('hex');

/** What an admin's organization connection requests (launch-scopes.ts), space-joined. */
export function organizationScopes(registration: Pick<EpicRegistration, 'scopes' | 'scopeSyntax'>): string {
  return scopesFor('organization', registration.scopes, registration.scopeSyntax).join(' ');
}

/** Who an authorization completed for: the organization's connection, or a launched user. */
export type CompletedAuthorization =
  | { kind: 'organization'; organizationId: string }
  | { kind: 'provider' | 'patient'; organizationId: string; user: AuthUser; credentialId: string };

export interface RegistrationInfo {
  /** How the organization's own connection is made. A backend service uses neither URI below. */
  connectionMode: ConnectionMode;
  redirectUri: string;
  ehrLaunchUrl: string;
  /** The organization's environment: which of the service's key sets (and JWK Set URL) it uses. */
  environment: EpicEnvironment;
  /**
   * The JWK Set URL to register at Epic for private_key_jwt: the service's public keys of the
   * organization's environment (sandbox and production each have their own).
   */
  jwksUrl: string;
  /** Whether the client authenticates with private_key_jwt (register jwksUrl) or a secret. */
  tokenAuthMethod: TokenAuthMethod;
  /** Launch scopes are absent for a backend service: its client cannot sign users in. */
  scopes: { organization: string[]; providerEhrLaunch?: string[]; patientStandalone?: string[] };
}
