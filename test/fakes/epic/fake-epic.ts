import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

import { TEST_SECRET_MARKER, testSecret } from 'test/factories/secrets';

import { ClientAuthenticator, type ClientAuthResult } from './client-auth';
import {
  capabilityStatement,
  capabilityStatementXml,
  openidConfiguration,
  smartConfiguration,
  type OAuthEndpoints,
} from './discovery';
import { DSTU2_IDS, SEED, seedResources, type FhirResource } from './fhir-data';
import { FHIR_JSON, FhirStore, handleFhir, operationOutcome } from './fhir-api';
import { isForm, parseParams, readBody, withParams } from './http';
import { consentPage, errorPage } from './pages';
import { defaultScopes, grantScopes, splitScope } from './scopes';
import type {
  FakeEpicAuthorizeResult,
  FakeEpicClient,
  FakeEpicClientRegistration,
  FakeEpicConsent,
  FakeEpicEndpoint,
  FakeEpicFault,
  FakeEpicFaultOptions,
  FakeEpicLaunchContext,
  FakeEpicOptions,
  FakeEpicRequest,
  FakeEpicUser,
} from './types';

/** Epic's path layout (docs/epic-and-smart.md §10): `{server}/oauth2/…` and `{server}/api/FHIR/R4`. */
const SERVER_PATH = '/interconnect-fhir-oauth';
const FHIR_PATH = `${SERVER_PATH}/api/FHIR/R4`;
const OAUTH_PATH = `${SERVER_PATH}/oauth2`;
/** The sandbox's `jwks_uri` path (docs/epic-and-smart.md §1). */
const JWKS_PATH = `${SERVER_PATH}/api/epic/2019/Security/Open/PublicKeys/530027/OIDC`;
const CLIENT_ENDPOINTS_PATH = `${OAUTH_PATH}/client/`;
/** A generic SMART server's layout (`flavor: 'smart'`): nothing Epic-shaped in its URLs. */
const SMART_FHIR_PATH = '/smart/fhir';
const SMART_OAUTH_PATH = '/smart/auth';
const SMART_JWKS_PATH = '/smart/keys';
const EHR_LAUNCH_PATH = `${SERVER_PATH}/fake-epic/ehr-launch`;

/**
 * A generic SMART on FHIR server, as the SMART Health IT launcher behaves (smart-on-fhir/smart-launcher-v2):
 * non-Epic URLs with the FHIR base as OpenID issuer, Basic credentials compared as sent (not
 * form-decoded), 401 for invalid_client and invalid_grant, patient context only with
 * `launch/patient`, and an id_token on refresh.
 */
export const GENERIC_SMART_SERVER: FakeEpicOptions = {
  flavor: 'smart',
  basicAuthDecoding: 'raw',
  invalidClientStatus: 401,
  invalidGrantStatus: 401,
  patientContext: 'launch-patient-scope',
  idTokenOnRefresh: 'valid',
};

export const DEFAULT_REDIRECT_URI = 'http://localhost:3000/fhir/epic-callback';

/** Test-only request headers `authorizeAsUser` uses to pick the user and the consent answer. */
const USER_HEADER = 'x-fake-epic-user';
const CONSENT_HEADER = 'x-fake-epic-consent';
const AUTO_HEADER = 'x-fake-epic-auto';

/** RFC 7636 §4.1/§4.2: verifiers and S256 challenges are 43-128 unreserved characters. */
const PKCE_VALUE = /^[A-Za-z0-9\-._~]{43,128}$/;

interface ServerKeys {
  privateKey: CryptoKey;
  publicJwk: JWK;
  kid: string;
}

let serverKeys: Promise<ServerKeys> | undefined;

/** One RS256 key per process: generating RSA keys is slow, and tests only need it to be consistent. */
function loadServerKeys(): Promise<ServerKeys> {
  serverKeys ??= (async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const jwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(jwk);
    return { privateKey, publicJwk: { ...jwk, kid, alg: 'RS256', use: 'sig' }, kid };
  })();
  return serverKeys;
}

interface LaunchRecord {
  context: FakeEpicLaunchContext & { practitioner: string };
  expiresAt: number;
  used: boolean;
}

/** Everything an authorization produced; tokens from one grant share it. */
interface Grant {
  id: string;
  clientId: string;
  scopes: string[];
  user: FakeEpicUser;
  patient?: string;
  ehr?: FakeEpicLaunchContext;
  nonce?: string;
  state?: string;
  openid: boolean;
  fhirUserClaim: boolean;
}

interface CodeRecord {
  grant: Grant;
  redirectUri: string;
  challenge?: string;
  expiresAt: number;
  used: boolean;
}

interface AccessTokenRecord {
  grantId: string;
  clientId: string;
  scopes: string[];
  patient?: string;
  expiresAt: number;
  revoked: boolean;
}

interface RefreshTokenRecord {
  grant: Grant;
  expiresAt: number;
  revoked: boolean;
  /** Rolling mode: a newer refresh token replaced this one. */
  replaced: boolean;
}

interface ValidAuthorizeRequest {
  client: FakeEpicClient;
  redirectUri: string;
  state?: string;
  requested: string[];
  challenge?: string;
  nonce?: string;
  launch?: LaunchRecord;
}

type AuthorizeOutcome =
  | { kind: 'page'; reason: string; clientId?: string }
  | {
      kind: 'redirect-error';
      redirectUri: string;
      error: string;
      reason: string;
      state?: string;
      clientId: string;
    }
  | { kind: 'ok'; request: ValidAuthorizeRequest };

interface ArmedFault {
  endpoint: FakeEpicEndpoint;
  fault: FakeEpicFault;
  remaining: number;
  grantType?: string;
}

interface Route {
  endpoint: FakeEpicEndpoint;
  /** Set on per-client endpoints (`endpointsByClientId`). */
  boundClientId?: string;
  /** `/authorize/decision` (consent page answer). */
  decision?: boolean;
}

/** One request being answered: every response goes through it, so it can be logged or dropped. */
class Exchange {
  dropResponse = false;

  constructor(
    readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    readonly url: URL,
    readonly entry: FakeEpicRequest,
  ) {}

  json(status: number, body: unknown, headers: Record<string, string> = {}, contentType?: string): void {
    this.entry.responseBody = body;
    this.send(status, JSON.stringify(body), {
      'Content-Type': contentType ?? 'application/json;charset=utf-8',
      ...headers,
    });
  }

  text(status: number, body: string, contentType: string, headers: Record<string, string> = {}): void {
    this.send(status, body, { 'Content-Type': contentType, ...headers });
  }

  redirect(location: string): void {
    this.entry.location = location;
    this.send(302, '', { Location: location, 'Cache-Control': 'no-store' });
  }

  drop(): void {
    this.req.socket.destroy();
  }

  private send(status: number, body: string, headers: Record<string, string>): void {
    this.entry.status = status;
    if (this.dropResponse) return this.drop();
    if (this.res.headersSent || this.res.destroyed) return;
    this.res.writeHead(status, { ...headers, 'Content-Length': String(Buffer.byteLength(body)) });
    this.res.end(body);
  }
}

const b64json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/**
 * A fake Epic: SMART on FHIR authorization server plus FHIR R4 API on a loopback port, built to the
 * facts in docs/epic-and-smart.md. Start it with `startFakeEpic()`; see README.md.
 */
export class FakeEpic {
  readonly origin: string;
  /** `{origin}/interconnect-fhir-oauth`: Epic's "server". */
  readonly serverUrl: string;
  /** The FHIR base, which is also the `iss` of EHR launches and the `aud` of authorize requests. */
  readonly fhirBase: string;
  /** The OpenID issuer, `{server}/oauth2`: not the FHIR base (docs/epic-and-smart.md §4). */
  readonly issuer: string;
  readonly authorizeUrl: string;
  readonly tokenUrl: string;
  readonly jwksUri: string;
  /** Only served (and advertised) with the `revocationEndpoint` switch. */
  readonly revocationUrl: string;
  readonly smartConfigurationUrl: string;
  readonly metadataUrl: string;

  private readonly options: Required<Omit<FakeEpicOptions, 'user' | 'port'>>;
  /** Path layout: Epic's, or a generic SMART server's (`flavor`). */
  private readonly fhirPath: string;
  private readonly oauthPath: string;
  private readonly jwksPath: string;
  private readonly clients = new Map<string, FakeEpicClient>();
  private readonly launches = new Map<string, LaunchRecord>();
  private readonly codes = new Map<string, CodeRecord>();
  private readonly accessTokens = new Map<string, AccessTokenRecord>();
  private readonly refreshTokens = new Map<string, RefreshTokenRecord>();
  private readonly pendingConsents = new Map<string, ValidAuthorizeRequest>();
  private readonly faults: ArmedFault[] = [];
  private readonly log: FakeEpicRequest[] = [];
  private readonly store = new FhirStore(seedResources());
  private readonly auth: ClientAuthenticator;
  private readonly sleepers = new Set<() => void>();
  private clockOffsetMs = 0;
  private user: FakeEpicUser | undefined;
  private consent: FakeEpicConsent = 'approve';
  private closed = false;

  /** @internal use `startFakeEpic()` */
  private idTokenTamper?: 'signature' | 'audience' | 'nonce';
  private advertisedTokenUrl?: string;
  private advertisedRevocationUrl?: string;

  constructor(
    private readonly server: Server,
    private readonly keys: ServerKeys,
    options: FakeEpicOptions,
  ) {
    const { port } = server.address() as AddressInfo;
    this.origin = `http://127.0.0.1:${port}`;
    const smart = options.flavor === 'smart';
    this.fhirPath = smart ? SMART_FHIR_PATH : FHIR_PATH;
    this.oauthPath = smart ? SMART_OAUTH_PATH : OAUTH_PATH;
    this.jwksPath = smart ? SMART_JWKS_PATH : JWKS_PATH;
    this.serverUrl = `${this.origin}${SERVER_PATH}`;
    this.fhirBase = `${this.origin}${this.fhirPath}`;
    // Epic's OpenID issuer is `{server}/oauth2`; the SMART launcher's is the FHIR base.
    this.issuer = smart ? this.fhirBase : `${this.origin}${OAUTH_PATH}`;
    this.authorizeUrl = `${this.origin}${this.oauthPath}/authorize`;
    this.tokenUrl = `${this.origin}${this.oauthPath}/token`;
    this.revocationUrl = `${this.origin}${this.oauthPath}/revoke`;
    this.jwksUri = `${this.origin}${this.jwksPath}`;
    this.smartConfigurationUrl = `${this.fhirBase}/.well-known/smart-configuration`;
    this.metadataUrl = `${this.fhirBase}/metadata`;
    this.user = options.user;
    this.options = {
      tokenFormat: options.tokenFormat ?? 'jwt',
      tokenTypeCase: options.tokenTypeCase ?? 'bearer',
      accessTokenLifetimeSeconds: options.accessTokenLifetimeSeconds ?? 3600,
      codeLifetimeSeconds: options.codeLifetimeSeconds ?? 300,
      launchTokenLifetimeSeconds: options.launchTokenLifetimeSeconds ?? 300,
      refreshTokenLifetimeSeconds: options.refreshTokenLifetimeSeconds ?? 90 * 24 * 3600,
      requirePkce: options.requirePkce ?? false,
      requireScope: options.requireScope ?? true,
      audRequired: options.audRequired ?? 'launch-context',
      duplicateScopeCase: options.duplicateScopeCase ?? false,
      echoOfflineAccess: options.echoOfflineAccess ?? false,
      revocationEndpoint: options.revocationEndpoint ?? false,
      endpointsByClientId: options.endpointsByClientId ?? false,
      basicAuthDecoding: options.basicAuthDecoding ?? 'form-urlencoded',
      rollingRefreshReuse: options.rollingRefreshReuse ?? 'reject',
      extraAssertionAudiences: options.extraAssertionAudiences ?? [],
      assertionClockToleranceSeconds: options.assertionClockToleranceSeconds ?? 0,
      consentPage: options.consentPage ?? false,
      ehrLaunchEndpoint: options.ehrLaunchEndpoint ?? false,
      defaultPageSize: options.defaultPageSize ?? 10,
      clientJwksCache: options.clientJwksCache ?? 'honour-cache-control',
      flavor: options.flavor ?? 'epic',
      idTokenOnRefresh: options.idTokenOnRefresh ?? 'none',
      invalidGrantStatus: options.invalidGrantStatus ?? 400,
      invalidClientStatus: options.invalidClientStatus ?? 400,
      patientContext: options.patientContext ?? 'patient-apps',
    };
    this.auth = new ClientAuthenticator({
      findClient: (id) => this.clients.get(id),
      now: () => this.now(),
      basicAuthDecoding: this.options.basicAuthDecoding,
      extraAssertionAudiences: this.options.extraAssertionAudiences,
      assertionClockToleranceSeconds: this.options.assertionClockToleranceSeconds,
      clientJwksCache: this.options.clientJwksCache,
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent && !res.destroyed) {
          res.writeHead(500, { 'Content-Type': 'text/plain' });
          res.end(`fake Epic error: ${(err as Error).message}`);
        }
      });
    });
  }

  // ---------------------------------------------------------------- test controls

  /**
   * Registers a client (an Epic app record). Returns it with every default filled in. Registering an
   * existing clientId replaces its registration (a rotated secret, persistent access switched off…).
   */
  registerClient(registration: FakeEpicClientRegistration = {}): FakeEpicClient {
    const clientId = registration.clientId ?? randomUUID();
    const type = registration.type ?? 'confidential';
    const audience = registration.audience ?? 'provider';
    const persistentAccess = registration.persistentAccess ?? false;
    const hasKeys = registration.jwks !== undefined || registration.jwksUrl !== undefined;
    const secret =
      type === 'public'
        ? undefined
        : (registration.secret ?? (hasKeys ? undefined : testSecret('epic-client')));
    const endpoints = this.endpointsFor(clientId);
    const client: FakeEpicClient = {
      clientId,
      type,
      secret,
      jwksUrl: registration.jwksUrl,
      jwks: registration.jwks,
      redirectUris: registration.redirectUris ?? [DEFAULT_REDIRECT_URI],
      audience,
      persistentAccess,
      refreshMode: registration.refreshMode ?? (persistentAccess ? 'static' : 'none'),
      scopes: registration.scopes ?? defaultScopes(audience),
      mappedToUser: registration.mappedToUser ?? true,
      authorizeUrl: endpoints.authorizeUrl,
      tokenUrl: endpoints.tokenUrl,
    };
    this.clients.set(clientId, client);
    return { ...client };
  }

  /** Deletes a registration (an org deactivating the app): its credentials then get `invalid_client`. */
  removeClient(clientId: string): void {
    this.clients.delete(clientId);
  }

  /** The user who logs in at the authorize endpoint; `undefined` restores the per-audience default. */
  setUser(user: FakeEpicUser | undefined): void {
    this.user = user;
  }

  /** Whether the user allows the app (`deny` makes authorize answer `access_denied`). */
  setConsent(consent: FakeEpicConsent): void {
    this.consent = consent;
  }

  /**
   * Issues a one-time launch token, as Epic does when a clinician opens the app, and returns the `iss`
   * and `launch` Epic sends to the app's launch URL (docs/epic-and-smart.md §7).
   */
  launchContext(context: FakeEpicLaunchContext = {}): { iss: string; launch: string } {
    const launch = this.mint('launch', { client_id: context.clientId });
    this.launches.set(launch, {
      context: { ...context, practitioner: context.practitioner ?? SEED.practitioner },
      expiresAt: this.now() + this.options.launchTokenLifetimeSeconds * 1000,
      used: false,
    });
    return { iss: this.fhirBase, launch };
  }

  /** `appLaunchUrl?iss=…&launch=…`: the URL Epic opens for an EHR launch. */
  ehrLaunchUrl(appLaunchUrl: string, context: FakeEpicLaunchContext = {}): string {
    const { iss, launch } = this.launchContext(context);
    return withParams(appLaunchUrl, { iss, launch });
  }

  /**
   * Plays the browser at the authorize endpoint: sends the request (GET, or POST as a form for EHR
   * launches), logs in as the configured user (or `options.user`), answers the consent, and returns
   * where the fake redirected with the parsed `code`, `state`, `error`.
   */
  async authorizeAsUser(
    url: string | URL,
    options: { method?: 'GET' | 'POST'; user?: FakeEpicUser; consent?: FakeEpicConsent } = {},
  ): Promise<FakeEpicAuthorizeResult> {
    const target = new URL(url);
    const headers: Record<string, string> = { [AUTO_HEADER]: '1' };
    if (options.user) headers[USER_HEADER] = userKey(options.user);
    if (options.consent) headers[CONSENT_HEADER] = options.consent;
    let res: Response;
    if (options.method === 'POST') {
      const body = target.searchParams.toString();
      target.search = '';
      headers['content-type'] = 'application/x-www-form-urlencoded';
      res = await fetch(target, { method: 'POST', body, headers, redirect: 'manual' });
    } else {
      res = await fetch(target, { headers, redirect: 'manual' });
    }
    const body = await res.text();
    const location = res.headers.get('location') ?? undefined;
    const result: FakeEpicAuthorizeResult = { status: res.status, body, location };
    if (location) {
      const params = new URL(location).searchParams;
      result.code = params.get('code') ?? undefined;
      result.state = params.get('state') ?? undefined;
      result.error = params.get('error') ?? undefined;
      result.errorDescription = params.get('error_description') ?? undefined;
    }
    return result;
  }

  /**
   * Makes the next `count` calls of an endpoint fail with `fault`. Faults queue in order; a call uses
   * the first armed fault that matches it.
   */
  failNext(
    endpoint: FakeEpicEndpoint,
    fault: FakeEpicFault,
    countOrOptions: number | FakeEpicFaultOptions = 1,
  ): void {
    const options = typeof countOrOptions === 'number' ? { count: countOrOptions } : countOrOptions;
    if ('oauthError' in fault && endpoint !== 'token' && endpoint !== 'revoke') {
      throw new TypeError('oauthError faults apply to the token and revoke endpoints only');
    }
    this.faults.push({ endpoint, fault, remaining: options.count ?? 1, grantType: options.grantType });
  }

  /**
   * The next id_token is wrong in one way: signed by a key not in the JWK Set, issued for another
   * audience, or carrying another nonce. For testing the app's id_token checks.
   */
  tamperNextIdToken(kind: 'signature' | 'audience' | 'nonce'): void {
    this.idTokenTamper = kind;
  }

  /** The next `count` refreshes get `invalid_grant` (shorthand for a `failNext` limited to refresh_token). */
  rejectRefresh(count = 1): void {
    this.failNext(
      'token',
      { oauthError: 'invalid_grant', description: 'refresh token rejected' },
      { count, grantType: 'refresh_token' },
    );
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  /** Every access token issued so far expires now (refresh tokens stay valid). */
  expireAccessTokens(): void {
    for (const record of this.accessTokens.values()) {
      record.expiresAt = Math.min(record.expiresAt, this.now() - 1);
    }
  }

  /** Revokes one access token. Returns false when the fake never issued it. */
  revokeAccessToken(token: string): boolean {
    const record = this.accessTokens.get(token);
    if (record) record.revoked = true;
    return record !== undefined;
  }

  /** Revokes a refresh token, as when a patient removes the app in MyChart (docs/epic-and-smart.md §6). */
  revokeRefreshToken(token: string): boolean {
    const record = this.refreshTokens.get(token);
    if (record) record.revoked = true;
    return record !== undefined;
  }

  /**
   * Makes discovery advertise another token endpoint (a compromised or re-pointed discovery
   * document); `undefined` restores the fake's own.
   */
  advertiseTokenEndpoint(url: string | undefined): void {
    this.advertisedTokenUrl = url;
  }

  /** The same for the revocation endpoint (served with `revocationEndpoint: true`). */
  advertiseRevocationEndpoint(url: string | undefined): void {
    this.advertisedRevocationUrl = url;
  }

  /**
   * Revokes every access and refresh token issued to a client, as when a patient removes the app in
   * MyChart or an Epic administrator ends its access. Returns how many refresh tokens died.
   */
  revokeClientGrants(clientId: string): number {
    for (const record of this.accessTokens.values()) if (record.clientId === clientId) record.revoked = true;
    let count = 0;
    for (const record of this.refreshTokens.values()) {
      if (record.grant.clientId === clientId && !record.revoked) {
        record.revoked = true;
        count += 1;
      }
    }
    return count;
  }

  /**
   * Ages everything the fake issued or cached (codes, launch tokens, access and refresh tokens, client
   * JWK Sets) by `ms`. Client assertion times and id_token times use the real clock: the client's clock
   * does not move.
   */
  advanceClock(ms: number): void {
    this.clockOffsetMs += ms;
  }

  /** The fake's clock, in ms since the epoch. */
  now(): number {
    return Date.now() + this.clockOffsetMs;
  }

  /** The requests received so far, oldest first, optionally for one endpoint and grant type. */
  requests(endpoint?: FakeEpicEndpoint, filter: { grantType?: string } = {}): FakeEpicRequest[] {
    return this.log.filter(
      (r) =>
        (endpoint === undefined || r.endpoint === endpoint) &&
        (filter.grantType === undefined || r.grantType === filter.grantType),
    );
  }

  /** How many requests an endpoint received (faulted ones included), e.g. `calls('token', { grantType: 'refresh_token' })`. */
  calls(endpoint: FakeEpicEndpoint, filter: { grantType?: string } = {}): number {
    return this.requests(endpoint, filter).length;
  }

  clearLog(): void {
    this.log.length = 0;
  }

  /** The client JWK Set URLs the fake fetched, in order (to assert on Epic-like caching). */
  jwksFetches(): string[] {
    return [...this.auth.jwksFetches];
  }

  /** What the fake knows about a token it issued. */
  inspectToken(token: string):
    | {
        kind: 'access';
        active: boolean;
        clientId: string;
        scopes: string[];
        patient?: string;
        expiresAt: number;
      }
    | { kind: 'refresh'; active: boolean; clientId: string; expiresAt: number }
    | undefined {
    const access = this.accessTokens.get(token);
    if (access) {
      const { clientId, scopes, patient, expiresAt } = access;
      return {
        kind: 'access',
        active: this.accessTokenProblem(access) === undefined,
        clientId,
        scopes,
        patient,
        expiresAt,
      };
    }
    const refresh = this.refreshTokens.get(token);
    if (refresh) {
      const active = this.refreshTokenProblem(refresh) === undefined;
      return {
        kind: 'refresh',
        active,
        clientId: refresh.grant.clientId,
        expiresAt: refresh.expiresAt,
      };
    }
    return undefined;
  }

  /** Adds (or replaces) a FHIR resource. */
  addResource(resource: FhirResource): void {
    this.store.put(resource);
  }

  /** A seeded or added resource, as the FHIR API would return it. */
  resource(type: string, id: string): FhirResource | undefined {
    return this.store.get(type, id);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const wake of this.sleepers) wake();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  // ---------------------------------------------------------------- HTTP plumbing

  private endpointsFor(clientId: string): { authorizeUrl: string; tokenUrl: string } {
    if (!this.options.endpointsByClientId) {
      return { authorizeUrl: this.authorizeUrl, tokenUrl: this.tokenUrl };
    }
    const base = `${this.origin}${CLIENT_ENDPOINTS_PATH}${encodeURIComponent(clientId)}`;
    return { authorizeUrl: `${base}/authorize`, tokenUrl: `${base}/token` };
  }

  private route(path: string): Route {
    if (path === `${this.oauthPath}/authorize`) return { endpoint: 'authorize' };
    if (path === `${this.oauthPath}/authorize/decision`) return { endpoint: 'authorize', decision: true };
    if (path === `${this.oauthPath}/token`) return { endpoint: 'token' };
    if (path === `${this.oauthPath}/revoke` && this.options.revocationEndpoint) return { endpoint: 'revoke' };
    if (path === `${this.oauthPath}/.well-known/openid-configuration`) {
      return { endpoint: 'openid-configuration' };
    }
    if (path === `${this.fhirPath}/.well-known/openid-configuration`) {
      return { endpoint: 'openid-configuration' };
    }
    if (path === `${this.fhirPath}/.well-known/smart-configuration`) {
      return { endpoint: 'smart-configuration' };
    }
    if (path === `${this.fhirPath}/metadata`) return { endpoint: 'metadata' };
    if (path === this.jwksPath) return { endpoint: 'jwks' };
    if (path.startsWith(`${this.fhirPath}/`)) return { endpoint: 'fhir' };
    if (path === EHR_LAUNCH_PATH && this.options.ehrLaunchEndpoint) return { endpoint: 'ehr-launch' };
    if (this.options.endpointsByClientId && path.startsWith(CLIENT_ENDPOINTS_PATH)) {
      const match = /^([^/]+)\/(authorize|authorize\/decision|token)$/.exec(
        path.slice(CLIENT_ENDPOINTS_PATH.length),
      );
      if (match) {
        const boundClientId = decodeURIComponent(match[1]);
        if (match[2] === 'token') return { endpoint: 'token', boundClientId };
        return { endpoint: 'authorize', boundClientId, decision: match[2] === 'authorize/decision' };
      }
    }
    return { endpoint: 'other' };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.origin);
    const route = this.route(url.pathname);
    const entry: FakeEpicRequest = {
      seq: this.log.length + 1,
      at: this.now(),
      endpoint: route.endpoint,
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      query: Object.fromEntries(url.searchParams),
      headers: { ...req.headers },
    };
    this.log.push(entry);
    const body = await readBody(req);
    const form = isForm(req) ? parseParams(body).params : undefined;
    if (form) {
      entry.form = form;
      entry.grantType = form.grant_type;
    }
    entry.clientId = form?.client_id ?? url.searchParams.get('client_id') ?? undefined;
    const x = new Exchange(req, res, url, entry);

    const fault = this.takeFault(entry);
    if (fault) {
      entry.fault = fault;
      if (!(await this.applyFault(x, fault))) return;
    }
    await this.dispatch(x, route, body);
  }

  private takeFault(entry: FakeEpicRequest): FakeEpicFault | undefined {
    const armed = this.faults.find(
      (f) => f.endpoint === entry.endpoint && (f.grantType === undefined || f.grantType === entry.grantType),
    );
    if (!armed) return undefined;
    armed.remaining -= 1;
    if (armed.remaining <= 0) this.faults.splice(this.faults.indexOf(armed), 1);
    return armed.fault;
  }

  /** Applies a fault. Returns true when the request should still be processed. */
  private async applyFault(x: Exchange, fault: FakeEpicFault): Promise<boolean> {
    if ('delayMs' in fault) {
      await this.sleep(fault.delayMs);
      return !this.closed;
    }
    if ('drop' in fault) {
      if (fault.drop === 'after-processing') {
        x.dropResponse = true;
        return true;
      }
      x.drop();
      return false;
    }
    if ('malformedJson' in fault) {
      x.text(200, '{"access_token":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOi', 'application/json;charset=utf-8');
      return false;
    }
    if ('oauthError' in fault) {
      x.entry.rejection = `injected ${fault.oauthError}`;
      const description = fault.description === undefined ? 'injected by the fake' : fault.description;
      x.json(fault.status ?? 400, { error: fault.oauthError, error_description: description }, NO_STORE);
      return false;
    }
    const headers: Record<string, string> = {};
    const retryAfter =
      fault.retryAfter === undefined ? ([429, 503].includes(fault.status) ? 1 : null) : fault.retryAfter;
    if (retryAfter !== null) headers['Retry-After'] = String(retryAfter);
    const body = fault.body ?? `<html><body><h1>${fault.status} Error</h1></body></html>`;
    x.text(fault.status, body, fault.contentType ?? 'text/html', headers);
    return false;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }

  private async dispatch(x: Exchange, route: Route, body: string): Promise<void> {
    switch (route.endpoint) {
      case 'authorize':
        return route.decision ? this.consentDecision(x, route) : this.authorize(x, route, body);
      case 'token':
        return this.token(x, route, body);
      case 'revoke':
        return this.revoke(x, body);
      case 'smart-configuration':
        return x.json(200, smartConfiguration(this.discoveryEndpoints(x.req)));
      case 'openid-configuration':
        return x.json(200, openidConfiguration(this.discoveryEndpoints(x.req)));
      case 'metadata':
        return this.metadata(x);
      case 'jwks':
        return x.json(200, { keys: [this.keys.publicJwk] });
      case 'fhir':
        return this.fhir(x);
      case 'ehr-launch':
        return this.ehrLaunch(x);
      case 'other':
        return x.text(404, 'Not Found', 'text/plain');
    }
  }

  /**
   * Epic OAuth 2.0 spec: an org can override endpoints per client, chosen by the `Epic-Client-ID` header;
   * without it a client may be given the wrong token and authorize endpoints (docs/epic-and-smart.md §1).
   */
  private discoveryEndpoints(req: IncomingMessage): OAuthEndpoints {
    const header = req.headers['epic-client-id'];
    const client = typeof header === 'string' ? this.clients.get(header) : undefined;
    const { authorizeUrl, tokenUrl } = client
      ? client
      : { authorizeUrl: this.authorizeUrl, tokenUrl: this.tokenUrl };
    return {
      issuer: this.issuer,
      jwksUri: this.jwksUri,
      authorizeUrl,
      tokenUrl: this.advertisedTokenUrl ?? tokenUrl,
      revocationUrl: this.options.revocationEndpoint
        ? (this.advertisedRevocationUrl ?? this.revocationUrl)
        : undefined,
    };
  }

  /** Epic: `/metadata` is XML unless the client asks for JSON (docs/epic-and-smart.md §1). */
  private metadata(x: Exchange): void {
    const accept = String(x.req.headers.accept ?? '').toLowerCase();
    const format = x.url.searchParams.get('_format') ?? '';
    const endpoints = this.discoveryEndpoints(x.req);
    if (/application\/(fhir\+)?json/.test(accept) || format.includes('json')) {
      x.json(200, capabilityStatement(this.fhirBase, endpoints), {}, FHIR_JSON);
    } else {
      x.text(200, capabilityStatementXml(this.fhirBase, endpoints), 'application/fhir+xml;charset=utf-8');
    }
  }

  /** `ehrLaunchEndpoint`: a browser-friendly EHR launch for local demos. */
  private ehrLaunch(x: Exchange): void {
    const q = x.url.searchParams;
    const launchUrl = q.get('launch_url') ?? '';
    if (!/^https?:\/\//.test(launchUrl)) {
      return x.text(400, 'launch_url (http or https) is required', 'text/plain');
    }
    const context: FakeEpicLaunchContext = {
      patient: q.get('patient') ?? SEED.camila,
      encounter: q.get('encounter') ?? undefined,
      practitioner: q.get('practitioner') ?? undefined,
      clientId: q.get('client_id') ?? undefined,
    };
    x.redirect(this.ehrLaunchUrl(launchUrl, context));
  }

  // ---------------------------------------------------------------- authorize

  private authorize(x: Exchange, route: Route, body: string): void {
    const method = x.req.method ?? 'GET';
    if (method !== 'GET' && method !== 'POST') {
      return this.authorizeError(x, { kind: 'page', reason: `${method} not allowed` });
    }
    if (method === 'POST' && !isForm(x.req)) {
      // Epic's troubleshooting: a POST with a JSON body fails (docs/epic-and-smart.md §12).
      return this.authorizeError(x, { kind: 'page', reason: 'POST /authorize needs a form-encoded body' });
    }
    const { params, repeated } = parseParams(method === 'POST' ? body : x.url.search);
    x.entry.clientId = params.client_id;
    const outcome = this.validateAuthorize(params, repeated, method, route);
    if (outcome.kind !== 'ok') return this.authorizeError(x, outcome);
    const request = outcome.request;

    if (this.options.consentPage && x.req.headers[AUTO_HEADER] === undefined) {
      const requestId = randomUUID();
      this.pendingConsents.set(requestId, request);
      const users = request.launch
        ? [
            {
              value: userKey({ kind: 'practitioner', practitionerId: request.launch.context.practitioner }),
              label: 'Clinician from the EHR launch',
            },
          ]
        : this.loginChoices(request.client);
      const action = `${x.url.pathname}/decision`;
      return x.text(
        200,
        consentPage({
          action,
          requestId,
          clientId: request.client.clientId,
          scopes: request.requested,
          users,
        }),
        'text/html;charset=utf-8',
      );
    }
    const consent =
      x.req.headers[CONSENT_HEADER] === 'deny'
        ? 'deny'
        : x.req.headers[CONSENT_HEADER] === 'approve'
          ? 'approve'
          : this.consent;
    const chosen = parseUserKey(x.req.headers[USER_HEADER]);
    this.completeAuthorize(x, request, chosen, consent);
  }

  private consentDecision(x: Exchange, route: Route): void {
    const params = x.entry.form ?? {};
    const request = this.pendingConsents.get(params.request ?? '');
    if (!request || x.req.method !== 'POST') {
      return this.authorizeError(x, { kind: 'page', reason: 'unknown or answered consent request' });
    }
    this.pendingConsents.delete(params.request);
    if (route.boundClientId !== undefined && route.boundClientId !== request.client.clientId) {
      return this.authorizeError(x, { kind: 'page', reason: 'consent answered at another client endpoint' });
    }
    x.entry.clientId = request.client.clientId;
    this.completeAuthorize(
      x,
      request,
      parseUserKey(params.user),
      params.decision === 'approve' ? 'approve' : 'deny',
    );
  }

  private loginChoices(client: FakeEpicClient): Array<{ value: string; label: string }> {
    const kind = client.audience === 'patient' ? 'Patient' : 'Practitioner';
    return this.store.all(kind).map((r) => {
      const name = (r.name as Array<{ text?: string }> | undefined)?.[0]?.text ?? r.id;
      const user: FakeEpicUser =
        kind === 'Patient'
          ? { kind: 'patient', patientId: r.id }
          : { kind: 'practitioner', practitionerId: r.id };
      return { value: userKey(user), label: `${name} (${kind} ${r.id})` };
    });
  }

  /**
   * RFC 6749 §4.1.2.1: errors about the client or the redirect URI are shown to the user (no redirect);
   * every later error goes back to the redirect URI with `error`, `error_description` and `state`.
   */
  private validateAuthorize(
    params: Record<string, string>,
    repeated: string | undefined,
    method: string,
    route: Route,
  ): AuthorizeOutcome {
    const clientId = params.client_id;
    if (!clientId) return { kind: 'page', reason: 'client_id is missing' };
    const client = this.clients.get(clientId);
    if (!client) return { kind: 'page', reason: `unknown client_id ${clientId}`, clientId };
    if (this.options.endpointsByClientId && route.boundClientId !== clientId) {
      return {
        kind: 'page',
        reason: 'this client must use its own authorize endpoint (Epic-Client-ID)',
        clientId,
      };
    }
    const redirectUri = params.redirect_uri;
    if (!redirectUri) return { kind: 'page', reason: 'redirect_uri is missing', clientId };
    // Epic: exact, case-sensitive match against a registered URI (Epic OAuth 2.0 spec; RFC 9700 §2.1).
    if (!client.redirectUris.includes(redirectUri)) {
      return {
        kind: 'page',
        reason: `redirect_uri ${redirectUri} is not registered for this client`,
        clientId,
      };
    }
    const state = params.state;
    const fail = (error: string, reason: string): AuthorizeOutcome => ({
      kind: 'redirect-error',
      redirectUri,
      error,
      reason,
      state,
      clientId,
    });
    if (repeated) return fail('invalid_request', `parameter ${repeated} is repeated`);
    if (client.audience === 'backend') {
      return fail('unauthorized_client', 'backend clients cannot use authorize');
    }
    if (params.response_type !== 'code') {
      return fail(
        'unsupported_response_type',
        `response_type must be code, not ${params.response_type ?? 'missing'}`,
      );
    }
    // Epic: POST /authorize works for EHR launches only (docs/epic-and-smart.md §2).
    if (method === 'POST' && !params.launch) {
      return fail('invalid_request', 'POST /authorize is for EHR launches only');
    }
    const requested = splitScope(params.scope);
    // Epic: scope is optional for standalone, but the sandbox requires it (docs/epic-and-smart.md §2).
    if (requested.length === 0 && this.options.requireScope) {
      return fail('invalid_scope', 'scope is required');
    }

    // Epic OAuth 2.0 spec: PKCE is optional at Epic, S256 only; `plain` is not supported (Aug 2019+).
    const challenge = params.code_challenge;
    const challengeMethod = params.code_challenge_method;
    if (challengeMethod !== undefined && challengeMethod !== 'S256') {
      return fail('invalid_request', `code_challenge_method ${challengeMethod} is not supported`);
    }
    if (challenge !== undefined) {
      // RFC 7636 §4.3: no method means `plain`, which Epic does not support.
      if (challengeMethod === undefined) {
        return fail('invalid_request', 'code_challenge_method missing (plain is not supported)');
      }
      if (!PKCE_VALUE.test(challenge)) return fail('invalid_request', 'code_challenge is malformed');
    } else if (challengeMethod !== undefined) {
      return fail('invalid_request', 'code_challenge_method without code_challenge');
    } else if (this.options.requirePkce) {
      return fail('invalid_request', 'PKCE (code_challenge) is required');
    }

    // Epic OAuth 2.0 tutorial: aud is the FHIR base; required from May 2023 when launch context is requested.
    const wantsContext =
      params.launch !== undefined || requested.some((s) => s === 'launch' || s.startsWith('launch/'));
    const audRequired =
      this.options.audRequired === 'always' ||
      (this.options.audRequired === 'launch-context' && wantsContext);
    if (params.aud === undefined && audRequired) return fail('invalid_request', 'aud is required');
    if (params.aud !== undefined && params.aud !== this.fhirBase) {
      return fail('invalid_request', `aud ${params.aud} is not this FHIR server (${this.fhirBase})`);
    }

    let launch: LaunchRecord | undefined;
    if (params.launch !== undefined) {
      // A one-time launch token from this server, else invalid_launch_token (docs/epic-and-smart.md §7).
      launch = this.launches.get(params.launch);
      if (!launch) return fail('invalid_request', 'invalid_launch_token: unknown launch token');
      if (launch.used) return fail('invalid_request', 'invalid_launch_token: launch token already used');
      if (launch.expiresAt <= this.now()) {
        return fail('invalid_request', 'invalid_launch_token: launch token expired');
      }
      if (launch.context.clientId !== undefined && launch.context.clientId !== clientId) {
        return fail('invalid_request', 'invalid_launch_token: launch token was issued for another client');
      }
      launch.used = true;
    } else if (requested.includes('launch')) {
      // Epic OAuth 2.0 tutorial: do not add `launch` to a standalone request.
      return fail('invalid_scope', 'the launch scope needs a launch parameter (EHR launch)');
    }
    return {
      kind: 'ok',
      request: { client, redirectUri, state, requested, challenge, nonce: params.nonce, launch },
    };
  }

  private authorizeError(x: Exchange, outcome: Exclude<AuthorizeOutcome, { kind: 'ok' }>): void {
    x.entry.rejection = outcome.reason;
    if (outcome.clientId) x.entry.clientId = outcome.clientId;
    if (outcome.kind === 'page') return x.text(400, errorPage(outcome.reason), 'text/html;charset=utf-8');
    x.redirect(
      withParams(outcome.redirectUri, {
        error: outcome.error,
        error_description: outcome.reason,
        state: outcome.state,
      }),
    );
  }

  private completeAuthorize(
    x: Exchange,
    request: ValidAuthorizeRequest,
    chosenUser: FakeEpicUser | undefined,
    consent: FakeEpicConsent,
  ): void {
    const { client, redirectUri, state, requested, launch } = request;
    const deny = (reason: string) =>
      this.authorizeError(x, {
        kind: 'redirect-error',
        redirectUri,
        error: 'access_denied',
        reason,
        state,
        clientId: client.clientId,
      });
    if (consent === 'deny') return deny('the user denied access');
    // Epic OAuth 2.0 tutorial: with the `launch` scope the EHR session's clinician is the user, and the
    // launch context applies; without it the user logs in again and no context is returned.
    const ehr = launch && requested.includes('launch') ? launch.context : undefined;
    const user: FakeEpicUser = ehr
      ? { kind: 'practitioner', practitionerId: ehr.practitioner }
      : (chosenUser ?? this.user ?? defaultUser(client));
    if ((client.audience === 'patient') !== (user.kind === 'patient') && !ehr) {
      return deny(`a ${user.kind} cannot log in to a ${client.audience} app`);
    }
    const grant: Grant = {
      id: randomUUID(),
      clientId: client.clientId,
      scopes: grantScopes(client.scopes, requested, this.options),
      user,
      // Epic: standalone launches return `patient` in patient-facing workflows (Epic's OAuth 2.0
      // specification); the SMART spec: only when the app asked for `launch/patient`.
      patient: ehr
        ? ehr.patient
        : user.kind === 'patient' &&
            (this.options.patientContext === 'patient-apps' || requested.includes('launch/patient'))
          ? user.patientId
          : undefined,
      ehr,
      nonce: request.nonce,
      state,
      openid: requested.includes('openid'),
      fhirUserClaim: requested.includes('fhirUser'),
    };
    const code = this.mint('code', { client_id: client.clientId });
    this.codes.set(code, {
      grant,
      redirectUri,
      challenge: request.challenge,
      expiresAt: this.now() + this.options.codeLifetimeSeconds * 1000,
      used: false,
    });
    // Epic OAuth 2.0 spec: the redirect carries only code and state (no RFC 9207 iss).
    x.redirect(withParams(redirectUri, { code, state }));
  }

  // ---------------------------------------------------------------- token

  private oauthError(x: Exchange, error: string, reason: string): void {
    x.entry.rejection = reason;
    // Epic's invalid_client carries `"error_description": null` (docs/epic-and-smart.md §12).
    const description = error === 'invalid_client' && this.options.flavor === 'epic' ? null : reason;
    let status = 400;
    const headers: Record<string, string> = { ...NO_STORE };
    if (error === 'invalid_grant') status = this.options.invalidGrantStatus;
    if (error === 'invalid_client' && this.options.invalidClientStatus === 401) {
      // RFC 6749 §5.2: a 401 for a client that used the Authorization header carries a challenge.
      status = 401;
      headers['WWW-Authenticate'] = 'Basic realm="token"';
    }
    x.json(status, { error, error_description: description }, headers);
  }

  private async clientFor(
    x: Exchange,
    route: Route,
    form: Record<string, string>,
  ): Promise<ClientAuthResult> {
    const tokenUrl = `${this.origin}${x.url.pathname}`;
    const result = await this.auth.authenticate(x.req, form, tokenUrl);
    if (result.ok && this.options.endpointsByClientId && route.boundClientId !== result.client.clientId) {
      return {
        ok: false,
        error: 'invalid_client',
        reason: 'this client must use its own token endpoint',
        clientId: result.client.clientId,
      };
    }
    return result;
  }

  private async token(x: Exchange, route: Route, body: string): Promise<void> {
    // Epic's troubleshooting: POST, form-encoded, no JSON, no query string (docs/epic-and-smart.md §3).
    if (x.req.method !== 'POST') {
      return this.oauthError(x, 'invalid_request', 'the token endpoint takes POST only');
    }
    if (x.url.search) {
      return this.oauthError(x, 'invalid_request', 'the token endpoint takes no query string');
    }
    if (!isForm(x.req)) {
      return this.oauthError(x, 'invalid_request', 'the body must be application/x-www-form-urlencoded');
    }
    const { params: form, repeated } = parseParams(body);
    if (repeated) return this.oauthError(x, 'invalid_request', `parameter ${repeated} is repeated`);

    const auth = await this.clientFor(x, route, form);
    if (!auth.ok) {
      if (auth.clientId) x.entry.clientId = auth.clientId;
      return this.oauthError(x, auth.error, auth.reason);
    }
    const { client, method } = auth;
    x.entry.clientId = client.clientId;
    switch (form.grant_type) {
      case 'authorization_code':
        return this.codeGrant(x, client, form);
      case 'refresh_token':
        return this.refreshGrant(x, client, form);
      case 'client_credentials':
        return this.clientCredentialsGrant(x, client, method);
      case undefined:
        return this.oauthError(x, 'invalid_request', 'grant_type is missing');
      default:
        return this.oauthError(
          x,
          'unsupported_grant_type',
          `grant_type ${form.grant_type} is not supported by the fake`,
        );
    }
  }

  private async codeGrant(x: Exchange, client: FakeEpicClient, form: Record<string, string>): Promise<void> {
    if (!form.code) return this.oauthError(x, 'invalid_request', 'code is missing');
    const record = this.codes.get(form.code);
    if (!record) return this.oauthError(x, 'invalid_grant', 'unknown authorization code');
    if (record.grant.clientId !== client.clientId) {
      return this.oauthError(x, 'invalid_grant', 'the code was issued to another client');
    }
    if (record.used) {
      // RFC 6749 §4.1.2: a code used twice is refused, and the tokens issued from it are revoked.
      this.revokeGrant(record.grant.id);
      return this.oauthError(x, 'invalid_grant', 'the code was already used');
    }
    if (record.expiresAt <= this.now()) return this.oauthError(x, 'invalid_grant', 'the code expired');
    if (form.redirect_uri !== record.redirectUri) {
      return this.oauthError(x, 'invalid_grant', 'redirect_uri differs from the authorize request');
    }
    const verifier = form.code_verifier;
    if (record.challenge !== undefined) {
      if (verifier === undefined) return this.oauthError(x, 'invalid_grant', 'code_verifier is missing');
      if (!PKCE_VALUE.test(verifier)) {
        return this.oauthError(x, 'invalid_grant', 'code_verifier is malformed');
      }
      const computed = createHash('sha256').update(verifier).digest('base64url');
      if (computed !== record.challenge) {
        return this.oauthError(x, 'invalid_grant', 'code_verifier does not match');
      }
    } else if (verifier !== undefined) {
      // RFC 9700 §2.1.1: a code_verifier for a code issued without a challenge is refused (PKCE downgrade).
      return this.oauthError(
        x,
        'invalid_grant',
        'code_verifier sent but the authorize request had no code_challenge',
      );
    }
    record.used = true;
    x.json(200, await this.tokenResponse(client, record.grant, 'authorization_code'), NO_STORE);
  }

  private async refreshGrant(
    x: Exchange,
    client: FakeEpicClient,
    form: Record<string, string>,
  ): Promise<void> {
    if (!form.refresh_token) return this.oauthError(x, 'invalid_request', 'refresh_token is missing');
    const record = this.refreshTokens.get(form.refresh_token);
    // invalid_grant for a dead refresh token: RFC 6749 §5.2 (Epic's wording is unconfirmed:
    // docs/epic-and-smart.md §5).
    if (!record || record.grant.clientId !== client.clientId) {
      return this.oauthError(x, 'invalid_grant', 'unknown refresh token');
    }
    if (record.replaced && this.options.rollingRefreshReuse === 'revoke-grant') {
      this.revokeGrant(record.grant.id);
    }
    const problem = this.refreshTokenProblem(record);
    if (problem) return this.oauthError(x, 'invalid_grant', problem);
    x.json(200, await this.tokenResponse(client, record.grant, 'refresh_token', record), NO_STORE);
  }

  /**
   * Backend services (docs/epic-and-smart.md §9): JWT client auth, scopes from the registration, no refresh
   * token.
   */
  private async clientCredentialsGrant(x: Exchange, client: FakeEpicClient, method: string): Promise<void> {
    if (client.audience !== 'backend') {
      return this.oauthError(x, 'unauthorized_client', 'only backend clients may use client_credentials');
    }
    if (method !== 'private_key_jwt') {
      return this.oauthError(x, 'unauthorized_client', 'backend clients authenticate with a JWT');
    }
    // Epic OAuth 2.0 spec: until an org admin maps the client to an Epic user, Epic answers
    // unauthorized_client.
    if (!client.mappedToUser) {
      return this.oauthError(x, 'unauthorized_client', 'client is not mapped to an Epic user');
    }
    const grant: Grant = {
      id: randomUUID(),
      clientId: client.clientId,
      scopes: grantScopes(client.scopes, [], this.options),
      user: { kind: 'practitioner', practitionerId: SEED.practitioner },
      openid: false,
      fhirUserClaim: false,
    };
    x.json(200, await this.tokenResponse(client, grant, 'client_credentials'), NO_STORE);
  }

  /** `client` is the current registration: a re-registered client's changes apply to later refreshes. */
  private async tokenResponse(
    client: FakeEpicClient,
    grant: Grant,
    grantType: 'authorization_code' | 'refresh_token' | 'client_credentials',
    usedRefresh?: RefreshTokenRecord,
  ): Promise<Record<string, unknown>> {
    const lifetime = this.options.accessTokenLifetimeSeconds;
    const accessToken = this.mint('access', {
      client_id: client.clientId,
      sub: subjectOf(grant.user),
      aud: this.fhirBase,
      exp: Math.floor((this.now() + lifetime * 1000) / 1000),
    });
    this.accessTokens.set(accessToken, {
      grantId: grant.id,
      clientId: client.clientId,
      scopes: grant.scopes,
      patient: grant.patient,
      expiresAt: this.now() + lifetime * 1000,
      revoked: false,
    });
    const body: Record<string, unknown> = {
      access_token: accessToken,
      token_type: this.options.tokenTypeCase,
      expires_in: lifetime,
      scope: grant.scopes.join(' '),
    };
    // Epic (docs/epic-and-smart.md §5): only confidential clients with persistent access get refresh
    // tokens; a refresh returns no new one unless the client uses rolling refresh tokens.
    const refreshable =
      client.type === 'confidential' && client.persistentAccess && client.refreshMode !== 'none';
    if (grantType === 'refresh_token' && usedRefresh) {
      if (client.refreshMode === 'rolling') {
        usedRefresh.replaced = true;
        // Rolling: the new refresh token inherits the first token's expiry (docs/epic-and-smart.md §5).
        body.refresh_token = this.newRefreshToken(grant, usedRefresh.expiresAt);
      }
      // Epic: the refresh response has access_token, token_type, expires_in and scope (Epic's OAuth 2.0 specification). Other
      // servers add an id_token (OpenID Connect Core §12.2), possibly one openid-client refuses.
      if (grant.openid && this.options.idTokenOnRefresh !== 'none') {
        body.id_token = await this.idToken(grant, this.options.idTokenOnRefresh === 'no-aud');
      }
      return body;
    }
    if (grantType === 'client_credentials') return body;

    if (grant.state !== undefined) body.state = grant.state;
    const epic = this.options.flavor === 'epic';
    if (grant.patient) {
      body.patient = grant.patient;
      // Epic: documented as epic.dstu2.patient, sent with the `__` prefix (docs/epic-and-smart.md §4).
      if (epic) body['__epic.dstu2.patient'] = DSTU2_IDS[grant.patient] ?? `T${grant.patient}`;
    }
    if (grant.ehr) {
      const { encounter, location, appointment, loginDepartment } = grant.ehr;
      Object.assign(body, { encounter, ...(epic ? { location, appointment, loginDepartment } : {}) });
      // Epic's sandbox sends need_patient_banner as the string "false"; SMART App Launch says boolean.
      body.need_patient_banner = epic ? 'false' : false;
      body.smart_style_url = `${this.serverUrl}/api/epic/2016/EDI/HTTP/HSWebStyles.json`;
    }
    if (refreshable) {
      body.refresh_token = this.newRefreshToken(
        grant,
        this.now() + this.options.refreshTokenLifetimeSeconds * 1000,
      );
    }
    if (grant.openid) body.id_token = await this.idToken(grant);
    for (const key of Object.keys(body)) if (body[key] === undefined) delete body[key];
    return body;
  }

  private newRefreshToken(grant: Grant, expiresAt: number): string {
    const token = this.mint('refresh', { client_id: grant.clientId, sub: subjectOf(grant.user) });
    this.refreshTokens.set(token, { grant, expiresAt, revoked: false, replaced: false });
    return token;
  }

  /**
   * Epic OAuth 2.0 spec, "OpenID Connect": RS256, `iss` = `{server}/oauth2`, `aud` = client id, 5-minute
   * expiry, nonce echoed.
   */
  private async idToken(grant: Grant, withoutAudience = false): Promise<string> {
    const tamper = this.idTokenTamper;
    this.idTokenTamper = undefined;
    const now = Math.floor(Date.now() / 1000);
    // A key that is not in the JWK Set (same kid), for `tamperNextIdToken('signature')`.
    const signingKey =
      tamper === 'signature' ? (await generateKeyPair('RS256')).privateKey : this.keys.privateKey;
    const resourceType = grant.user.kind === 'patient' ? 'Patient' : 'Practitioner';
    const id = grant.user.kind === 'patient' ? grant.user.patientId : grant.user.practitionerId;
    const jwt = new SignJWT({
      ...(grant.nonce !== undefined
        ? { nonce: tamper === 'nonce' ? 'not-the-nonce-sent' : grant.nonce }
        : {}),
      // fhirUser only for apps that request `openid fhirUser` (Epic OAuth 2.0 spec, "OpenID Connect").
      ...(grant.fhirUserClaim ? { fhirUser: `${this.fhirBase}/${resourceType}/${id}` } : {}),
    })
      .setProtectedHeader({ alg: 'RS256', kid: this.keys.kid, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setSubject(subjectOf(grant.user))
      .setIssuedAt(now)
      .setExpirationTime(now + 300);
    if (!withoutAudience) jwt.setAudience(tamper === 'audience' ? 'another-client' : grant.clientId);
    return jwt.sign(signingKey);
  }

  private refreshTokenProblem(record: RefreshTokenRecord): string | undefined {
    if (record.revoked) return 'the refresh token was revoked';
    if (record.replaced) return 'the refresh token was replaced by a newer one (rolling refresh)';
    if (record.expiresAt <= this.now()) return 'the refresh token expired';
    return undefined;
  }

  private accessTokenProblem(record: AccessTokenRecord): string | undefined {
    if (record.revoked) return 'The access token was revoked';
    if (record.expiresAt <= this.now()) return 'The access token expired';
    return undefined;
  }

  private revokeGrant(grantId: string): void {
    for (const record of this.accessTokens.values()) if (record.grantId === grantId) record.revoked = true;
    for (const record of this.refreshTokens.values()) if (record.grant.id === grantId) record.revoked = true;
  }

  /**
   * RFC 7009 revocation, served only with the `revocationEndpoint` switch (Epic advertises none:
   * docs/epic-and-smart.md §6).
   */
  private async revoke(x: Exchange, body: string): Promise<void> {
    if (x.req.method !== 'POST' || !isForm(x.req)) {
      return this.oauthError(x, 'invalid_request', 'POST a form');
    }
    const { params: form } = parseParams(body);
    const auth = await this.auth.authenticate(x.req, form, this.tokenUrl);
    if (!auth.ok) return this.oauthError(x, auth.error, auth.reason);
    x.entry.clientId = auth.client.clientId;
    const refresh = this.refreshTokens.get(form.token ?? '');
    if (refresh && refresh.grant.clientId === auth.client.clientId) this.revokeGrant(refresh.grant.id);
    const access = this.accessTokens.get(form.token ?? '');
    if (access && access.clientId === auth.client.clientId) access.revoked = true;
    // RFC 7009 §2.2: 200 whether or not the token was valid.
    x.text(200, '', 'text/plain');
  }

  // ---------------------------------------------------------------- FHIR

  private fhir(x: Exchange): void {
    const header = x.req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    const realm = `realm="${this.fhirBase}"`;
    if (!match) {
      // RFC 6750 §3.1: no credentials, so no error code in the challenge.
      x.entry.rejection = 'no bearer token';
      return x.json(
        401,
        operationOutcome('login', 'Authentication required'),
        { 'WWW-Authenticate': `Bearer ${realm}` },
        FHIR_JSON,
      );
    }
    const record = this.accessTokens.get(match[1]);
    const problem = record ? this.accessTokenProblem(record) : 'The access token is unknown';
    if (!record || problem) {
      x.entry.rejection = problem;
      return x.json(
        401,
        operationOutcome('login', problem ?? 'invalid token'),
        { 'WWW-Authenticate': `Bearer ${realm}, error="invalid_token", error_description="${problem}"` },
        FHIR_JSON,
      );
    }
    x.entry.clientId = record.clientId;
    const segments = x.url.pathname
      .slice(this.fhirPath.length + 1)
      .split('/')
      .filter(Boolean);
    handleFhir({
      method: x.req.method ?? 'GET',
      segments,
      query: x.url.searchParams,
      access: { scopes: record.scopes, patient: record.patient },
      store: this.store,
      fhirBase: this.fhirBase,
      pageSize: this.options.defaultPageSize,
      reply: {
        json: (status, body, headers, contentType) => {
          if (status >= 400) x.entry.rejection = JSON.stringify(body);
          x.json(status, body, headers, contentType);
        },
      },
    });
  }

  // ---------------------------------------------------------------- tokens

  /**
   * Codes and tokens: long JWT-shaped strings like the sandbox's, or opaque ones (`tokenFormat`), so the
   * app never relies on their format or length (docs/epic-and-smart.md §10). Access and refresh tokens
   * carry the test-secret marker, so a token that reaches the app's log fails the run.
   */
  private mint(kind: 'code' | 'access' | 'refresh' | 'launch', claims: Record<string, unknown>): string {
    const secret = kind === 'access' || kind === 'refresh';
    if (this.options.tokenFormat === 'opaque') {
      return `${secret ? `${TEST_SECRET_MARKER}.` : ''}${randomBytes(kind === 'launch' ? 24 : 48).toString('base64url')}`;
    }
    const now = Math.floor(this.now() / 1000);
    const header = b64json({ alg: 'RS256', kid: this.keys.kid, typ: 'JWT' });
    const payload = b64json({
      'urn:oid:1.2.840.114350.1.13.0.1.7.3.688884.100': 'FAKE-EPIC',
      'epic.tokentype': kind,
      iss: this.issuer,
      jti: randomUUID(),
      iat: now,
      nbf: now,
      ...claims,
      'epic.eci': `urn:epic:${randomBytes(12).toString('base64url')}`,
    });
    const signature = randomBytes(256).toString('base64url'); // the length of an RS256 signature
    return `${header}.${payload}.${secret ? TEST_SECRET_MARKER + signature.slice(TEST_SECRET_MARKER.length) : signature}`;
  }
}

const NO_STORE = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };

function defaultUser(client: FakeEpicClient): FakeEpicUser {
  return client.audience === 'patient'
    ? { kind: 'patient', patientId: SEED.camila }
    : { kind: 'practitioner', practitionerId: SEED.practitioner };
}

/** Epic's `sub` is an opaque per-user id, not the FHIR id. */
function subjectOf(user: FakeEpicUser): string {
  return createHash('sha256').update(userKey(user)).digest('base64url').slice(0, 40);
}

function userKey(user: FakeEpicUser): string {
  return user.kind === 'patient' ? `patient:${user.patientId}` : `practitioner:${user.practitionerId}`;
}

function parseUserKey(value: string | string[] | undefined): FakeEpicUser | undefined {
  if (typeof value !== 'string') return undefined;
  const [kind, id] = [value.slice(0, value.indexOf(':')), value.slice(value.indexOf(':') + 1)];
  if (kind === 'patient' && id) return { kind: 'patient', patientId: id };
  if (kind === 'practitioner' && id) return { kind: 'practitioner', practitionerId: id };
  return undefined;
}

/**
 * Starts a fake Epic on an ephemeral loopback port (or `options.port`). Close it with `close()`.
 *
 * @see ./README.md
 */
export async function startFakeEpic(options: FakeEpicOptions = {}): Promise<FakeEpic> {
  const keys = await loadServerKeys();
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return new FakeEpic(server, keys, options);
}
