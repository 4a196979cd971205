/** What the app needs from a SMART server's discovery documents. */
export interface SmartConfiguration {
  /** Where it came from: SMART's well-known file, or the FHIR CapabilityStatement (Epic's older way). */
  source: 'smart-configuration' | 'metadata';
  authorizationEndpoint: string;
  tokenEndpoint: string;
  /** OpenID issuer and keys, for id_token checks (present with `sso-openid-connect`). */
  issuer?: string;
  jwksUri?: string;
  /** Absent at Epic (docs/epic-and-smart.md §6): disconnect then only forgets the tokens locally. */
  revocationEndpoint?: string;
  /** Undefined when the document does not say (the CapabilityStatement never does). */
  codeChallengeMethods?: string[];
  tokenEndpointAuthMethods?: string[];
  capabilities: string[];
}

export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';

const OAUTH_URIS = 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris';

type Json = Record<string, unknown>;

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);
const strings = (v: unknown): string[] | undefined =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined;

/** Parses `{base}/.well-known/smart-configuration` (SMART App Launch 2, conformance §Metadata). */
export function parseSmartConfiguration(json: unknown): Partial<SmartConfiguration> {
  const doc = (json && typeof json === 'object' ? json : {}) as Json;
  return {
    source: 'smart-configuration',
    authorizationEndpoint: str(doc.authorization_endpoint),
    tokenEndpoint: str(doc.token_endpoint),
    issuer: str(doc.issuer),
    jwksUri: str(doc.jwks_uri),
    revocationEndpoint: str(doc.revocation_endpoint),
    codeChallengeMethods: strings(doc.code_challenge_methods_supported),
    tokenEndpointAuthMethods: strings(doc.token_endpoint_auth_methods_supported),
    capabilities: strings(doc.capabilities) ?? [],
  };
}

/**
 * Parses the `oauth-uris` extension of a FHIR CapabilityStatement (`{base}/metadata`), which
 * Epic documents as the discovery route for organizations on older versions
 * (https://fhir.epic.com/Documentation?docId=oauth2; SMART 1.0: https://hl7.org/fhir/smart-app-launch/1.0.0/).
 */
export function parseCapabilityStatement(json: unknown): Partial<SmartConfiguration> {
  const doc = (json && typeof json === 'object' ? json : {}) as Json;
  const rest = Array.isArray(doc.rest) ? (doc.rest as Json[]) : [];
  const uris: Record<string, string> = {};
  for (const r of rest) {
    const security = (r.security ?? {}) as Json;
    const extensions = Array.isArray(security.extension) ? (security.extension as Json[]) : [];
    for (const ext of extensions.filter((e) => e.url === OAUTH_URIS)) {
      for (const inner of Array.isArray(ext.extension) ? (ext.extension as Json[]) : []) {
        const url = str(inner.url);
        const value = str(inner.valueUri);
        if (url && value) uris[url] = value;
      }
    }
  }
  return {
    source: 'metadata',
    authorizationEndpoint: uris.authorize,
    tokenEndpoint: uris.token,
    revocationEndpoint: uris.revoke,
    capabilities: [],
  };
}

function endpointProblem(
  name: string,
  value: string | undefined,
  allowInsecureLoopback: boolean,
): string | null {
  if (!value) return `the server does not advertise ${name}`;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `${name} is not an absolute URL`;
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol === 'https:' || (url.protocol === 'http:' && loopback && allowInsecureLoopback)) {
    return null;
  }
  return `${name} does not use https`;
}

/**
 * Checks that a discovered server can serve this app: both endpoints absolute and https, PKCE
 * S256 when methods are advertised (SMART 2 requires S256 and forbids `plain`), and our client
 * authentication method when methods are advertised. Returns every problem, worded for an admin.
 */
export function checkSmartConfiguration(
  config: Partial<SmartConfiguration>,
  options: { authMethod: ClientAuthMethod; allowInsecureLoopback: boolean },
): { ok: true; config: SmartConfiguration } | { ok: false; problems: string[] } {
  const problems = [
    endpointProblem('an authorization endpoint', config.authorizationEndpoint, options.allowInsecureLoopback),
    endpointProblem('a token endpoint', config.tokenEndpoint, options.allowInsecureLoopback),
  ].filter((p): p is string => p !== null);
  if (config.codeChallengeMethods && !config.codeChallengeMethods.includes('S256')) {
    problems.push('the server does not support PKCE with S256, which this app always uses');
  }
  if (config.tokenEndpointAuthMethods && !config.tokenEndpointAuthMethods.includes(options.authMethod)) {
    problems.push(
      `the server does not accept the client authentication method ${options.authMethod} ` +
        `(it accepts ${config.tokenEndpointAuthMethods.join(', ') || 'none'})`,
    );
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, config: config as SmartConfiguration };
}
