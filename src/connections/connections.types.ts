/**
 * The public vocabulary of the Connections module: the state model of an Epic connection, the
 * plain read models its services return, and what callers pass in. No entity leaves the module.
 */

export enum ConnectionState {
  /** No Epic client registered (client ID or FHIR base URL missing). */
  NotConfigured = 'not_configured',
  /** Registered, never connected, or disconnected on purpose. */
  NotConnected = 'not_connected',
  /** A valid token: refreshable, or with time left beyond the warning window. */
  Connected = 'connected',
  /** Ends within the warning window and cannot be refreshed past it. */
  Expiring = 'expiring',
  /** Ended and cannot be refreshed, or the server rejected the refresh. */
  Expired = 'expired',
  /** The last call or refresh failed transiently and has not recovered. */
  Error = 'error',
}

export const CONNECTION_STATES = Object.values(ConnectionState);

/** States an admin must act on or should know about (notifications, "need attention"). */
export const ATTENTION_STATES: readonly ConnectionState[] = [
  ConnectionState.Expiring,
  ConnectionState.Expired,
  ConnectionState.Error,
];

export interface ConnectionFacts {
  /** Client ID and FHIR base URL are registered. */
  configured: boolean;
  /** The stored credential, if any. */
  credential: {
    /** When the access token ends. */
    expiresAt: Date;
    refreshable: boolean;
    /** When the refresh token ends, where the server said so (Epic usually does not). */
    refreshExpiresAt: Date | null;
  } | null;
  /** The last failure: set by failures, cleared by the next success. */
  lastError: string | null;
  /** When the last tokens ended: kept when dead tokens are cleared, emptied by a disconnect. */
  tokenExpiry: Date | null;
}

/** Who a connection belongs to: an organization's own (userId null) or one of its users' credentials. */
export interface ConnectionRef {
  /** The credential, when the connection has one (empty for an organization without tokens). */
  id: string;
  organizationId: string;
  userId: string | null;
}

/**
 * A FHIR base URL as servers are compared everywhere (launch `iss`, a credential's server, an
 * organization's registered base): trailing slashes dropped, lower-cased (scheme and host are
 * case-insensitive, and Epic's paths are compared so too). For comparing only: URLs sent to a
 * server keep their case. `organization.fhir_base_url` is compared in SQL as
 * `lower(rtrim(fhir_base_url, '/'))`, the same rule.
 */
export function fhirBaseKey(url: string): string {
  return url.replace(/\/+$/, '').toLowerCase();
}

/**
 * Whether a credential issued for `issuedFor` may be used with `fhirBaseUrl`: the same FHIR base
 * (fhirBaseKey). Tokens go to no other server.
 */
export function sameFhirBase(issuedFor: string | null, fhirBaseUrl: string): boolean {
  return issuedFor !== null && fhirBaseKey(issuedFor) === fhirBaseKey(fhirBaseUrl);
}

/** Whose credential a FHIR call uses: an organization's own, or one credential (a user's) by id. */
export type CredentialTarget = { organizationId: string } | { credentialId: string };

export type CredentialGrantType = 'authorization_code' | 'client_credentials';
export type CredentialPurpose = 'organization' | 'provider' | 'patient';

/** Tokens to store, as a token response was parsed (RFC 6749 §5.1; SMART launch context). */
export interface TokensToStore {
  accessToken: string;
  refreshToken: string | null;
  expiresAt: Date;
  issuedAt: Date | null;
  refreshExpiresAt: Date | null;
  scopes: string[];
  patientId: string | null;
  encounterId: string | null;
}

/**
 * A stored credential without its tokens (they never leave the module except through
 * TokenStoreService's reveal methods, for a request to the server that issued them).
 */
export interface StoredCredential {
  id: string;
  organizationId: string;
  userId: string | null;
  purpose: CredentialPurpose;
  grantType: CredentialGrantType;
  /** The FHIR base the tokens were issued for (they are never sent anywhere else). */
  fhirBaseUrl: string | null;
  expiresAt: Date;
  issuedAt: Date | null;
  refreshExpiresAt: Date | null;
  /** Renewable without anyone signing in: a refresh token is stored, or it came from client_credentials. */
  refreshable: boolean;
  /** Granted scopes, as the server returned them. */
  scopes: string[];
  patientId: string | null;
  encounterId: string | null;
  fhirUser: string | null;
  needPatientBanner: boolean | null;
  smartStyleUrl: string | null;
  /** When the server refused a user's grant for good (its tokens are gone; the row says why). */
  endedAt: Date | null;
  /** A user's connection health (an organization's is in its OrganizationConnectionState). */
  lastError: string | null;
  lastErrorAt: Date | null;
  lastSync: Date | null;
  /** Compare-and-set counter of token writes. */
  version: number;
  createdAt: Date;
}

/** A credential as FHIR calls see it: what the Authorization header and the base URL need. */
export interface ActiveCredential {
  id: string;
  organizationId: string;
  userId: string | null;
  version: number;
  expiresAt: Date;
  /** When the access token was obtained (null if unknown): caps the refresh margin at half its life. */
  issuedAt: Date | null;
  refreshable: boolean;
  patientId: string | null;
  /** The FHIR base the tokens were issued for, without a trailing slash. */
  fhirBaseUrl: string;
  /** The connection's last error and sync (the organization's for its own, the credential's for a user's). */
  lastError: string | null;
  lastSync: Date | null;
  /** Ciphertext: TokenStoreService.accessToken() decrypts it. */
  accessTokenEnc: string;
}

/** An organization's own connection, as its row says (raw: the read model adds the derived state). */
export interface OrganizationConnectionState {
  organizationId: string;
  isConnected: boolean;
  /** When the last stored access token ends; kept after dead tokens are cleared. */
  tokenExpiry: Date | null;
  lastSync: Date | null;
  lastError: string | null;
  lastErrorAt: Date | null;
}
