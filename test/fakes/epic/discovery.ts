import type { IncomingMessage } from 'node:http';

import { escapeHtml } from './http';
import type { FakeEpicState } from './state';

export interface OAuthEndpoints {
  issuer: string;
  authorizeUrl: string;
  tokenUrl: string;
  jwksUri: string;
  /** Only when the revocation switch is on: Epic advertises none (docs/epic-and-smart.md §6). */
  revocationUrl?: string;
}

/**
 * Epic OAuth 2.0 spec: an org can override endpoints per client, chosen by the `Epic-Client-ID` header;
 * without it a client may be given the wrong token and authorize endpoints (docs/epic-and-smart.md §1).
 */
export function advertisedEndpoints(state: FakeEpicState, req: IncomingMessage): OAuthEndpoints {
  const header = req.headers['epic-client-id'];
  const client = typeof header === 'string' ? state.clients.get(header) : undefined;
  const { authorizeUrl, tokenUrl } = client
    ? client
    : { authorizeUrl: state.urls.authorizeUrl, tokenUrl: state.urls.tokenUrl };
  return {
    issuer: state.urls.issuer,
    jwksUri: state.urls.jwksUri,
    authorizeUrl,
    tokenUrl: state.advertisedTokenUrl ?? tokenUrl,
    revocationUrl: state.options.revocationEndpoint
      ? (state.advertisedRevocationUrl ?? state.urls.revocationUrl)
      : undefined,
  };
}

const GRANT_TYPES = [
  'authorization_code',
  'refresh_token',
  'client_credentials',
  'urn:ietf:params:oauth:grant-type:jwt-bearer',
  'urn:ietf:params:oauth:grant-type:token-exchange',
];
const AUTH_METHODS = ['client_secret_post', 'client_secret_basic', 'private_key_jwt'];
const SCOPES = ['epic.scanning.dmsusername', 'fhirUser', 'launch', 'openid', 'profile'];

/**
 * `{base}/.well-known/smart-configuration`, shaped like the sandbox's (docs/epic-and-smart.md §1):
 * no revocation/introspection endpoint, no `token_endpoint_auth_signing_alg_values_supported`, no
 * `permission-online`, PKCE S256 only.
 */
export function smartConfiguration(e: OAuthEndpoints): Record<string, unknown> {
  return {
    issuer: e.issuer,
    jwks_uri: e.jwksUri,
    authorization_endpoint: e.authorizeUrl,
    token_endpoint: e.tokenUrl,
    ...(e.revocationUrl ? { revocation_endpoint: e.revocationUrl } : {}),
    token_endpoint_auth_methods_supported: AUTH_METHODS,
    grant_types_supported: GRANT_TYPES,
    scopes_supported: SCOPES,
    response_types_supported: ['code'],
    capabilities: [
      'launch-ehr',
      'launch-standalone',
      'client-public',
      'client-confidential-symmetric',
      'client-confidential-asymmetric',
      'context-banner',
      'context-style',
      'context-ehr-patient',
      'context-ehr-encounter',
      'context-standalone-patient',
      'permission-offline',
      'permission-patient',
      'permission-user',
      'permission-v1',
      'permission-v2',
      'sso-openid-connect',
      'authorize-post',
    ],
    code_challenge_methods_supported: ['S256'],
  };
}

/**
 * `{server}/oauth2/.well-known/openid-configuration`, shaped like the sandbox's (docs/epic-and-smart.md §1).
 */
export function openidConfiguration(e: OAuthEndpoints): Record<string, unknown> {
  return {
    issuer: e.issuer,
    jwks_uri: e.jwksUri,
    authorization_endpoint: e.authorizeUrl,
    token_endpoint: e.tokenUrl,
    ...(e.revocationUrl ? { revocation_endpoint: e.revocationUrl } : {}),
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    scopes_supported: SCOPES,
    grant_types_supported: GRANT_TYPES,
    token_endpoint_auth_methods_supported: AUTH_METHODS,
    response_modes_supported: ['query'],
  };
}

const OAUTH_URIS = 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris';
const RESOURCES: Array<{ type: string; search: string[] }> = [
  {
    type: 'Patient',
    search: ['_id', 'identifier', 'family', 'given', 'name', 'birthdate', 'gender', '_count'],
  },
  { type: 'Observation', search: ['patient', 'subject', 'category', 'code', '_count'] },
  { type: 'Encounter', search: ['patient', 'subject', 'status', '_count'] },
  { type: 'Practitioner', search: ['_id', 'family', 'given', 'name', '_count'] },
];

/** `{base}/metadata` as JSON, with the SMART `oauth-uris` extension (docs/epic-and-smart.md §1). */
export function capabilityStatement(fhirBase: string, e: OAuthEndpoints): Record<string, unknown> {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    experimental: true,
    date: '2026-05-11T00:00:00Z',
    kind: 'instance',
    software: { name: 'Epic', version: 'May 2026 (fake)', releaseDate: '2026-05-11' },
    implementation: { description: 'Fake Epic FHIR Server', url: fhirBase },
    fhirVersion: '4.0.1',
    format: ['xml', 'json'],
    rest: [
      {
        mode: 'server',
        security: {
          extension: [
            {
              extension: [
                { valueUri: e.authorizeUrl, url: 'authorize' },
                { valueUri: e.tokenUrl, url: 'token' },
              ],
              url: OAUTH_URIS,
            },
          ],
          cors: true,
          service: ['OAuth', 'SMART-on-FHIR'].map((code) => ({
            coding: [
              {
                system: 'http://terminology.hl7.org/CodeSystem/restful-security-service',
                code,
                display: code,
              },
            ],
            text: code,
          })),
        },
        resource: RESOURCES.map(({ type, search }) => ({
          type,
          interaction: [{ code: 'read' }, { code: 'search-type' }],
          searchParam: search.map((name) => ({ name, type: name === '_count' ? 'number' : 'token' })),
        })),
      },
    ],
  };
}

/**
 * The same statement as FHIR XML, which Epic returns when no JSON `Accept` header is sent (Epic OAuth 2.0
 * spec).
 */
export function capabilityStatementXml(fhirBase: string, e: OAuthEndpoints): string {
  const v = (value: string) => `"${escapeHtml(value)}"`;
  const resources = RESOURCES.map(
    ({ type, search }) =>
      `<resource><type value=${v(type)}/><interaction><code value="read"/></interaction>` +
      `<interaction><code value="search-type"/></interaction>` +
      search.map((name) => `<searchParam><name value=${v(name)}/></searchParam>`).join('') +
      `</resource>`,
  ).join('');
  return (
    `<?xml version="1.0" encoding="utf-8"?>` +
    `<CapabilityStatement xmlns="http://hl7.org/fhir">` +
    `<status value="active"/><kind value="instance"/>` +
    `<implementation><description value="Fake Epic FHIR Server"/><url value=${v(fhirBase)}/></implementation>` +
    `<fhirVersion value="4.0.1"/><format value="xml"/><format value="json"/>` +
    `<rest><mode value="server"/><security>` +
    `<extension url=${v(OAUTH_URIS)}>` +
    `<extension url="authorize"><valueUri value=${v(e.authorizeUrl)}/></extension>` +
    `<extension url="token"><valueUri value=${v(e.tokenUrl)}/></extension>` +
    `</extension><cors value="true"/></security>${resources}</rest>` +
    `</CapabilityStatement>`
  );
}
