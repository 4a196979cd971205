/** Which Epic an organization connects to. */
export enum EpicEnvironment {
  Sandbox = 'sandbox',
  Production = 'production',
}

/** Epic's public sandbox FHIR R4 base (open.epic). */
export const EPIC_SANDBOX_FHIR_BASE = 'https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4';

/** Data scopes an organization connection asks for unless the admin chose others (SMART v1 `.read`). */
export const DEFAULT_ORGANIZATION_SCOPES = 'user/Patient.read user/Observation.read user/Encounter.read';

/** An organization's Epic client, as EpicAuth needs it (the secret is fetched separately). */
export interface EpicRegistration {
  organizationId: string;
  organizationName: string;
  clientId: string;
  fhirBaseUrl: string;
  /** Space-separated data scopes (the flow adds openid, fhirUser and offline_access). */
  scopes: string;
  hasClientSecret: boolean;
  tokenAuthMethod: TokenAuthMethod;
  /** SMART scope syntax the organization's Epic expects. */
  scopeSyntax: ScopeSyntax;
}

/**
 * How the client authenticates at the token endpoint: Basic (default, RFC 6749 §2.3.1) or the
 * secret in the form body, for servers that need it (EPIC-SMART.md §3, §12.9).
 */
export enum TokenAuthMethod {
  ClientSecretBasic = 'client_secret_basic',
  ClientSecretPost = 'client_secret_post',
}

/** SMART scope syntax: v1 (`.read`/`.write`) or v2 (`.rs`, `.cud`…), which Epic supports from Aug 2024. */
export enum ScopeSyntax {
  V1 = 'v1',
  V2 = 'v2',
}
