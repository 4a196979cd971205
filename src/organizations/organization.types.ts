/** Which Epic an organization connects to. */
export enum EpicEnvironment {
  Sandbox = 'sandbox',
  Production = 'production',
}

/** Epic's public sandbox FHIR R4 base (open.epic). */
export const EPIC_SANDBOX_FHIR_BASE = 'https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4';

/** Data scopes an organization connection asks for unless the admin chose others (SMART v1 `.read`). */
export const DEFAULT_ORGANIZATION_SCOPES = 'user/Patient.read user/Observation.read user/Encounter.read';

/** The same for a backend-service connection: `system/` scopes (SMART Backend Services). */
export const DEFAULT_BACKEND_SCOPES = 'system/Patient.read system/Observation.read system/Encounter.read';

/** The data scopes of an organization that chose none. */
export function defaultScopes(mode: ConnectionMode): string {
  return mode === ConnectionMode.Backend ? DEFAULT_BACKEND_SCOPES : DEFAULT_ORGANIZATION_SCOPES;
}

/** An organization's Epic client, as EpicAuth needs it (the secret is fetched separately). */
export interface EpicRegistration {
  organizationId: string;
  organizationName: string;
  clientId: string;
  fhirBaseUrl: string;
  /**
   * Sandbox (non-production) or production: with private_key_jwt, which of the service's key sets
   * signs the assertions (each has its own JWK Set URL, registered at the matching client).
   */
  environment: EpicEnvironment;
  /** Space-separated data scopes (the flow adds openid, fhirUser and offline_access). */
  scopes: string;
  hasClientSecret: boolean;
  tokenAuthMethod: TokenAuthMethod;
  /** SMART scope syntax the organization's Epic expects. */
  scopeSyntax: ScopeSyntax;
  /** With private_key_jwt: which of the service's signing keys signs the client assertions. */
  assertionAlg: AssertionAlg;
  /** How the organization's own connection is made: an admin's sign-in, or as a backend service. */
  connectionMode: ConnectionMode;
  /**
   * client_secret_basic: the encoding to send (the admin's override, else the one detected, else the
   * RFC 6749 one), and whether the other may be tried once when the server answers invalid_client.
   */
  basicEncoding: { use: 'form-urlencoded' | 'raw'; fallback: boolean; detected: boolean };
  /**
   * What messages call the server (server-label.ts): "Epic", the name an administrator gave it, or
   * "the EHR" for a server that is not Epic.
   */
  serverName: string;
  /** Whether the server is Epic (Epic-specific wording and help apply). */
  isEpic: boolean;
}

/**
 * How the client authenticates at the token endpoint: Basic (default, RFC 6749 §2.3.1), the
 * secret in the form body for servers that need it, or a JWT signed with the service's own key,
 * which Epic recommends (https://fhir.epic.com/Documentation?docId=oauth2tutorial): no shared secret
 * exists anywhere.
 */
export enum TokenAuthMethod {
  ClientSecretBasic = 'client_secret_basic',
  ClientSecretPost = 'client_secret_post',
  PrivateKeyJwt = 'private_key_jwt',
}

/**
 * How `client_secret_basic` puts the client ID and secret into the Authorization header.
 * RFC 6749 §2.3.1 form-urlencodes both before base64 (`-` `.` `_` `~` stay, `+` `/` `=` are escaped),
 * as Epic documents; many servers compare the decoded header as sent instead. `auto` tries the
 * RFC form first, falls back once to the other on `invalid_client`, and remembers what worked.
 */
export enum BasicCredentialEncoding {
  Auto = 'auto',
  FormUrlencoded = 'form-urlencoded',
  Raw = 'raw',
}

/** The algorithm of the key that signs client assertions (SMART v2 clients support both). */
export enum AssertionAlg {
  RS384 = 'RS384',
  ES384 = 'ES384',
}

/**
 * Interactive: an admin signs in at Epic once (authorization code, refresh token).
 * Backend: the service obtains tokens itself (client_credentials with a JWT: SMART Backend Services,
 * https://hl7.org/fhir/smart-app-launch/backend-services.html).
 */
export enum ConnectionMode {
  Interactive = 'interactive',
  Backend = 'backend',
}

/** SMART scope syntax: v1 (`.read`/`.write`) or v2 (`.rs`, `.cud`…), which Epic supports from Aug 2024. */
export enum ScopeSyntax {
  V1 = 'v1',
  V2 = 'v2',
}

// What the pages call an organization's FHIR server, and whether it is Epic: part of this module's public face.
export {
  EPIC_LABEL,
  isEpicBaseUrl,
  serverLabel,
  speakOfServer,
  type DiscoveryHints,
  type ServerLabel,
} from './server-label';
