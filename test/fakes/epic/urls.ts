/** Epic's path layout (docs/epic-and-smart.md §10): `{server}/oauth2/…` and `{server}/api/FHIR/R4`. */
export const SERVER_PATH = '/interconnect-fhir-oauth';
const FHIR_PATH = `${SERVER_PATH}/api/FHIR/R4`;
const OAUTH_PATH = `${SERVER_PATH}/oauth2`;
/** The sandbox's `jwks_uri` path (docs/epic-and-smart.md §1). */
const JWKS_PATH = `${SERVER_PATH}/api/epic/2019/Security/Open/PublicKeys/530027/OIDC`;
export const CLIENT_ENDPOINTS_PATH = `${OAUTH_PATH}/client/`;
/** A generic SMART server's layout (`flavor: 'smart'`): nothing Epic-shaped in its URLs. */
const SMART_FHIR_PATH = '/smart/fhir';
const SMART_OAUTH_PATH = '/smart/auth';
const SMART_JWKS_PATH = '/smart/keys';
export const EHR_LAUNCH_PATH = `${SERVER_PATH}/fake-epic/ehr-launch`;

/** Where a fake serves what: the public URLs of `FakeEpic` and the paths the router matches. */
export interface FakeEpicUrls {
  origin: string;
  serverUrl: string;
  fhirBase: string;
  issuer: string;
  authorizeUrl: string;
  tokenUrl: string;
  revocationUrl: string;
  jwksUri: string;
  smartConfigurationUrl: string;
  metadataUrl: string;
  /** Path layout: Epic's, or a generic SMART server's (`flavor`). */
  fhirPath: string;
  oauthPath: string;
  jwksPath: string;
}

export function fakeEpicUrls(origin: string, flavor: 'epic' | 'smart' | undefined): FakeEpicUrls {
  const smart = flavor === 'smart';
  const fhirPath = smart ? SMART_FHIR_PATH : FHIR_PATH;
  const oauthPath = smart ? SMART_OAUTH_PATH : OAUTH_PATH;
  const jwksPath = smart ? SMART_JWKS_PATH : JWKS_PATH;
  const fhirBase = `${origin}${fhirPath}`;
  return {
    origin,
    serverUrl: `${origin}${SERVER_PATH}`,
    fhirBase,
    // Epic's OpenID issuer is `{server}/oauth2`; the SMART launcher's is the FHIR base.
    issuer: smart ? fhirBase : `${origin}${OAUTH_PATH}`,
    authorizeUrl: `${origin}${oauthPath}/authorize`,
    tokenUrl: `${origin}${oauthPath}/token`,
    revocationUrl: `${origin}${oauthPath}/revoke`,
    jwksUri: `${origin}${jwksPath}`,
    smartConfigurationUrl: `${fhirBase}/.well-known/smart-configuration`,
    metadataUrl: `${fhirBase}/metadata`,
    fhirPath,
    oauthPath,
    jwksPath,
  };
}
