import type { FakeEpicCoding } from './http';
import type { JSONWebKeySet } from 'jose';

/** Which Epic endpoint a request hit: the unit of fault injection and call counting. */
export type FakeEpicEndpoint =
  | 'authorize'
  | 'token'
  | 'revoke'
  | 'smart-configuration'
  | 'openid-configuration'
  | 'metadata'
  | 'jwks'
  | 'fhir'
  | 'ehr-launch'
  | 'bulk-files'
  | 'other';

export type FakeEpicAudience = 'patient' | 'provider' | 'backend';

/**
 * How refresh tokens behave for a client (docs/epic-and-smart.md §5). Epic issues them only to confidential
 * clients with "Requires Persistent Access"; by default a refresh does not return a new one
 * (`static`); "Uses Rolling Refresh Tokens" returns a new one each time (`rolling`).
 */
export type FakeEpicRefreshMode = 'none' | 'static' | 'rolling';

/** A client registration, as an Epic app record would hold it. Everything is optional. */
export interface FakeEpicClientRegistration {
  /** Default: a random id. */
  clientId?: string;
  /** `public` clients send no credential and never get refresh tokens (docs/epic-and-smart.md §3, §5). */
  type?: 'confidential' | 'public';
  /**
   * Client secret for `client_secret_basic` / `client_secret_post`. A confidential client with no
   * secret and no JWKS gets a random secret (carrying the test-secret marker).
   */
  secret?: string;
  /**
   * JWK Set URL for `private_key_jwt`: fetched over HTTP and cached like Epic does
   * (docs/epic-and-smart.md §3).
   */
  jwksUrl?: string;
  /**
   * Public keys uploaded with the registration (Epic's "static" keys). RSA only: Epic accepts EC
   * keys only through a JWK Set URL (Epic OAuth 2.0 spec, "Creating a JWT").
   */
  jwks?: JSONWebKeySet;
  /** Exact, case-sensitive redirect URIs. Default: `http://localhost:3000/fhir/epic-callback`. */
  redirectUris?: string[];
  /** Default `provider`. `backend` clients may use only `client_credentials` (docs/epic-and-smart.md §9). */
  audience?: FakeEpicAudience;
  /** "Requires Persistent Access". Default false. */
  persistentAccess?: boolean;
  /** Default: `static` when persistentAccess is on, else `none`. */
  refreshMode?: FakeEpicRefreshMode;
  /**
   * The API scopes the registration grants. Epic derives the granted scopes from the registration,
   * not from the request (docs/epic-and-smart.md §8). Default: Patient, Observation, Encounter and
   * Practitioner read with the prefix of the audience (`patient/`, `user/`, `system/`).
   */
  scopes?: string[];
  /**
   * Backend clients only: whether an org admin mapped the client to an Epic user (docs/epic-and-smart.md §9).
   * Default true.
   */
  mappedToUser?: boolean;
}

/** A registration with every default filled in. */
export interface FakeEpicClient {
  clientId: string;
  type: 'confidential' | 'public';
  secret?: string;
  jwksUrl?: string;
  jwks?: JSONWebKeySet;
  redirectUris: string[];
  audience: FakeEpicAudience;
  persistentAccess: boolean;
  refreshMode: FakeEpicRefreshMode;
  scopes: string[];
  mappedToUser: boolean;
  /** The authorize and token endpoints this client must use (they differ with `endpointsByClientId`). */
  authorizeUrl: string;
  tokenUrl: string;
}

/** The person who "logs in" at the authorize endpoint. */
export type FakeEpicUser =
  { kind: 'practitioner'; practitionerId: string } | { kind: 'patient'; patientId: string };

export type FakeEpicConsent = 'approve' | 'deny';

/** What an EHR launch carries (docs/epic-and-smart.md §7). */
export interface FakeEpicLaunchContext {
  patient?: string;
  encounter?: string;
  /** The clinician who launched the app. Default: the seeded practitioner. */
  practitioner?: string;
  location?: string;
  appointment?: string;
  loginDepartment?: string;
  /** Bind the launch token to one client: redeeming it with another client fails. */
  clientId?: string;
}

/** The OAuth errors a fault can answer with. */
export type FakeEpicOAuthError =
  'invalid_grant' | 'invalid_client' | 'unauthorized_client' | 'invalid_request' | 'invalid_scope';

/**
 * A fault for `failNext`. Unless noted, the fake answers without processing the request, so its
 * state (codes, refresh tokens) is unchanged.
 */
export type FakeEpicFault =
  /**
   * An HTTP error with an HTML body, like a gateway. 503 and 429 carry `Retry-After` (default 1 s).
   * `headers` are added to the answer (e.g. a 202 with a `Content-Location` of the test's choosing).
   */
  | {
      status: number;
      retryAfter?: number | string | null;
      body?: string;
      contentType?: string;
      headers?: Record<string, string>;
    }
  /** Wait, then process and answer normally, even if the client gave up meanwhile. */
  | { delayMs: number }
  /** Close the socket. `after-processing`: process first (a code is spent), then drop the answer. */
  | { drop: true | 'after-processing' }
  /** 200 with a truncated JSON body. */
  | { malformedJson: true }
  /**
   * Process and answer normally, but after the headers and the first `afterBytes` bytes of the body
   * (default: half of it; 0: none) send nothing more, keeping the connection open until the client
   * or `close()` ends it: a server stalled midway through its answer.
   */
  | {
      stallBody: true;
      afterBytes?: number;
      /** Then reset the connection (a moment later) instead of keeping it open: a server cut off midway. */
      thenReset?: boolean;
    }
  /** An OAuth error body (400), e.g. `invalid_grant` for a refresh. Token and revoke endpoints only. */
  | { oauthError: FakeEpicOAuthError; description?: string | null; status?: number };

export interface FakeEpicFaultOptions {
  /** How many matching calls fail. Default 1; `Infinity` fails until `clearFaults()`. */
  count?: number;
  /** Token endpoint: fail only this grant type (e.g. `refresh_token`). */
  grantType?: string;
}

/** One request the fake received, with what it answered. */
export interface FakeEpicRequest {
  seq: number;
  /** Fake clock (ms since epoch) when the request arrived. */
  at: number;
  endpoint: FakeEpicEndpoint;
  method: string;
  /** Path and query string, as sent. */
  url: string;
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  /** Form parameters (token, revoke, POST authorize). */
  form?: Record<string, string>;
  /** Token endpoint: the grant type. */
  grantType?: string;
  /** The client the request identified itself as (authenticated or not). */
  clientId?: string;
  /** The answer time drawn for this FHIR request (answerFhirAfter), in ms: what it waited before answering. */
  latencyMs?: number;
  /** The content coding the answer's body was sent in (FakeEpic.compressAnswers), if any. */
  coding?: FakeEpicCoding;
  /** The injected fault, if one was applied. */
  fault?: FakeEpicFault;
  /** Why the fake rejected the request, in words (Epic's own description may be null). */
  rejection?: string;
  status?: number;
  /** The JSON the fake answered with, when it was JSON. */
  responseBody?: unknown;
  /** Redirect target of an authorize request. */
  location?: string;
}

/** Server-wide switches. Defaults follow docs/epic-and-smart.md; each unconfirmed behaviour is a switch. */
export interface FakeEpicOptions {
  /** Default 0 (ephemeral). */
  port?: number;
  /** `jwt`: long JWT-shaped codes and tokens, like the sandbox (docs/epic-and-smart.md §10). Default `jwt`. */
  tokenFormat?: 'jwt' | 'opaque';
  /** Case of `token_type` (both seen: docs/epic-and-smart.md §4). Default `bearer`. */
  tokenTypeCase?: 'bearer' | 'Bearer';
  /** Default 3600, Epic's (docs/epic-and-smart.md §4, §9). */
  accessTokenLifetimeSeconds?: number;
  /** Default 300 s. Epic's value is not documented. */
  codeLifetimeSeconds?: number;
  /** Default 300 s. Epic's value is not documented. */
  launchTokenLifetimeSeconds?: number;
  /** Persistent access period. Default 90 days (unconfirmed: docs/epic-and-smart.md §5). */
  refreshTokenLifetimeSeconds?: number;
  /**
   * Reject authorize requests without PKCE. Default false: PKCE is optional at Epic
   * (docs/epic-and-smart.md §2).
   */
  requirePkce?: boolean;
  /** Reject authorize requests without `scope`. Default true, like the sandbox (docs/epic-and-smart.md §2). */
  requireScope?: boolean;
  /**
   * When `aud` is required: `launch-context` (May 2023+, default), `always` or `never`
   * (docs/epic-and-smart.md §2).
   */
  audRequired?: 'launch-context' | 'always' | 'never';
  /**
   * Grant `.Read` next to every `.read` scope, like the sandbox's duplicate variants
   * (docs/epic-and-smart.md §4). Default false.
   */
  duplicateScopeCase?: boolean;
  /**
   * Echo `offline_access` in `scope` when requested. Default false: Epic may not (docs/epic-and-smart.md §5).
   */
  echoOfflineAccess?: boolean;
  /**
   * Serve and advertise an RFC 7009 revocation endpoint. Default false: Epic advertises none
   * (docs/epic-and-smart.md §6).
   */
  revocationEndpoint?: boolean;
  /**
   * Per-client endpoints: discovery and `/metadata` give a client its own authorize/token URLs only
   * when asked with `Epic-Client-ID`; the generic endpoints then reject the client
   * (docs/epic-and-smart.md §1). Default false.
   */
  endpointsByClientId?: boolean;
  /**
   * How `client_secret_basic` credentials are decoded: `form-urlencoded` as Epic documents and
   * RFC 6749 §2.3.1 says, or `raw` (no decoding), which a developer reported (docs/epic-and-smart.md §3).
   * Default `form-urlencoded`.
   */
  basicAuthDecoding?: 'form-urlencoded' | 'raw';
  /**
   * `epic` (default): Epic's paths (`/interconnect-fhir-oauth/api/FHIR/R4`, `…/oauth2`), the OpenID
   * issuer `{server}/oauth2`, and Epic's extra token fields (`__epic.dstu2.patient`, string
   * `need_patient_banner`). `smart`: a generic SMART on FHIR server such as the SMART Health IT
   * launcher: FHIR base `/smart/fhir`, OAuth endpoints under `/smart/auth`, the FHIR base as the
   * id_token issuer, boolean `need_patient_banner`, no Epic fields. Combine it with the other switches
   * (or use `GENERIC_SMART_SERVER`).
   */
  flavor?: 'epic' | 'smart';
  /**
   * Whether a refresh response carries an id_token (OpenID Connect Core §12.2 allows it): `none`
   * (Epic, default), `valid`, or `no-aud` (an id_token without `aud`, which openid-client refuses).
   */
  idTokenOnRefresh?: 'none' | 'valid' | 'no-aud';
  /** HTTP status of `invalid_grant` answers from the token endpoint. Default 400 (RFC 6749 §5.2); some servers send 401 or 403. */
  invalidGrantStatus?: 400 | 401 | 403;
  /** HTTP status of `invalid_client`. Default 400 (Epic); 401 adds `WWW-Authenticate: Basic` as RFC 6749 §5.2 asks. */
  invalidClientStatus?: 400 | 401;
  /**
   * When a standalone launch gets a `patient` in the token response: `patient-apps` (Epic, default:
   * a patient-facing app always does) or `launch-patient-scope` (the SMART spec: only when the app
   * requested `launch/patient`).
   */
  patientContext?: 'patient-apps' | 'launch-patient-scope';
  /**
   * FHIR answers compressed in this coding when the request accepts it, from the start (as
   * FakeEpic.compressAnswers). Default: never compressed.
   */
  answerCoding?: FakeEpicCoding;
  /**
   * Rolling refresh: what reusing a replaced refresh token does. Undocumented at Epic
   * (docs/epic-and-smart.md §5). Default `reject`.
   */
  rollingRefreshReuse?: 'reject' | 'revoke-grant';
  /** Extra `aud` values accepted in client assertions (orgs behind a proxy: docs/epic-and-smart.md §3). */
  extraAssertionAudiences?: string[];
  /**
   * Seconds of clock skew tolerated on client assertion `iat`/`nbf`. Default 0: "cannot be in the future"
   * (docs/epic-and-smart.md §3).
   */
  assertionClockToleranceSeconds?: number;
  /** Show an HTML login/consent page to browsers instead of consenting at once. Default false. */
  consentPage?: boolean;
  /**
   * Serve `GET {server}/fake-epic/ehr-launch?launch_url=…&patient=…&encounter=…`, which issues a launch
   * token and redirects the browser to the app's launch URL, like clicking the app in Hyperspace.
   * For `npm run fake-epic`. Default false.
   */
  ehrLaunchEndpoint?: boolean;
  /** The user who logs in. Default: the seeded practitioner for provider apps, Camila Lopez for patient apps. */
  user?: FakeEpicUser;
  /** Page size of search Bundles without `_count`. Default 10. */
  defaultPageSize?: number;
  /**
   * The `Location` of a created resource: `absolute` (default) as FHIR R4 §3.1.0.8.1 writes it,
   * `[base]/[type]/[id]/_history/[vid]`, or `relative` (`[type]/[id]/_history/[vid]`), which some
   * servers send. A client or proxy that assumes one of them is tested against both.
   */
  locationHeader?: 'absolute' | 'relative';
  /**
   * Where a search's `next`/`previous` links point: `search-url` (default), the search again at
   * `[base]/[type]?…&_getpagesoffset=…`, or `getpages`, a search kept on the server and paged at the
   * base, `[base]?_getpages=<id>&_getpagesoffset=…` (HAPI FHIR's layout). FHIR leaves paging links
   * opaque (FHIR R4 §3.1.1.5.6 "Paging"); a client must follow them as they are.
   */
  pagingLinks?: 'search-url' | 'getpages';
  /**
   * Write `/` in JSON answers as `\/`, which JSON allows (RFC 8259 §7) and some servers' encoders
   * emit (PHP's json_encode by default). `unicode`: as `\u002F`, which JSON equally allows and
   * encoders that escape every non-alphanumeric character write. Default false. A proxy that looks
   * for URLs in the bytes must find every form.
   */
  jsonSlashEscaping?: boolean | 'unicode';
  /**
   * When the token endpoint fetches a `private_key_jwt` client's JWK Set URL: `honour-cache-control`
   * (default) caches it as Epic does (Epic's OAuth 2.0 specification, "Hosting a JWK Set URL": up to 29 hours, less if `Cache-Control` says so);
   * `fetch-every-call` fetches it during every token call that carries a client assertion, so a
   * client whose JWK Set cannot answer while its own token call is in flight is caught at once.
   */
  clientJwksCache?: 'honour-cache-control' | 'fetch-every-call';
}

/** What `authorizeAsUser` saw. */
export interface FakeEpicAuthorizeResult {
  status: number;
  /** The redirect target, when the fake redirected. */
  location?: string;
  code?: string;
  state?: string;
  error?: string;
  errorDescription?: string;
  /** The page body, when the fake did not redirect (error page or consent page). */
  body: string;
}
