import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { testSecret } from 'test/factories/secrets';

import { playBrowserAtAuthorize } from './authorize-endpoint';
import { DEFAULT_BULK_SETTINGS, type BulkDataSettings } from './bulk-data';
import type { FhirResource } from './fhir-data';
import type { FakeEpicCoding } from './http';
import { buildEhrLaunchUrl, issueLaunch } from './launch';
import { Router } from './router';
import { defaultScopes } from './scopes';
import { FakeEpicState } from './state';
import { loadServerKeys, type ServerKeys } from './tokens';
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

/**
 * A fake Epic: SMART on FHIR authorization server plus FHIR R4 API on a loopback port, built to the
 * facts in docs/epic-and-smart.md. Start it with `startFakeEpic()`; see README.md.
 *
 * This class is the test-control API. The server behind it: router.ts routes each request to
 * authorize-endpoint.ts, token-endpoint.ts, fhir-endpoint.ts or discovery.ts, which all share one
 * `FakeEpicState` (state.ts).
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

  private readonly state: FakeEpicState;
  private readonly router: Router;

  /** @internal use `startFakeEpic()` */
  constructor(
    private readonly server: Server,
    keys: ServerKeys,
    options: FakeEpicOptions,
  ) {
    const { port } = server.address() as AddressInfo;
    this.state = new FakeEpicState(keys, `http://127.0.0.1:${port}`, options);
    const urls = this.state.urls;
    this.origin = urls.origin;
    this.serverUrl = urls.serverUrl;
    this.fhirBase = urls.fhirBase;
    this.issuer = urls.issuer;
    this.authorizeUrl = urls.authorizeUrl;
    this.tokenUrl = urls.tokenUrl;
    this.revocationUrl = urls.revocationUrl;
    this.jwksUri = urls.jwksUri;
    this.smartConfigurationUrl = urls.smartConfigurationUrl;
    this.metadataUrl = urls.metadataUrl;
    this.router = new Router(this.state);
    this.router.listen(server);
  }

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
    const endpoints = this.state.endpointsFor(clientId);
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
    this.state.clients.set(clientId, client);
    return { ...client };
  }

  /** Deletes a registration (an org deactivating the app): its credentials then get `invalid_client`. */
  removeClient(clientId: string): void {
    this.state.clients.delete(clientId);
  }

  /** The user who logs in at the authorize endpoint; `undefined` restores the per-audience default. */
  setUser(user: FakeEpicUser | undefined): void {
    this.state.user = user;
  }

  /** Whether the user allows the app (`deny` makes authorize answer `access_denied`). */
  setConsent(consent: FakeEpicConsent): void {
    this.state.consent = consent;
  }

  /**
   * Issues a one-time launch token, as Epic does when a clinician opens the app, and returns the `iss`
   * and `launch` Epic sends to the app's launch URL (docs/epic-and-smart.md §7).
   */
  launchContext(context: FakeEpicLaunchContext = {}): { iss: string; launch: string } {
    return issueLaunch(this.state, context);
  }

  /** `appLaunchUrl?iss=…&launch=…`: the URL Epic opens for an EHR launch. */
  ehrLaunchUrl(appLaunchUrl: string, context: FakeEpicLaunchContext = {}): string {
    return buildEhrLaunchUrl(this.state, appLaunchUrl, context);
  }

  /**
   * Plays the browser at the authorize endpoint: sends the request (GET, or POST as a form for EHR
   * launches), logs in as the configured user (or `options.user`), answers the consent, and returns
   * where the fake redirected with the parsed `code`, `state`, `error`.
   */
  authorizeAsUser(
    url: string | URL,
    options: { method?: 'GET' | 'POST'; user?: FakeEpicUser; consent?: FakeEpicConsent } = {},
  ): Promise<FakeEpicAuthorizeResult> {
    return playBrowserAtAuthorize(url, options);
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
    this.state.faults.push({ endpoint, fault, remaining: options.count ?? 1, grantType: options.grantType });
  }

  /**
   * The next id_token is wrong in one way: signed by a key not in the JWK Set, issued for another
   * audience, or carrying another nonce. For testing the app's id_token checks.
   */
  tamperNextIdToken(kind: 'signature' | 'audience' | 'nonce'): void {
    this.state.idTokenTamper = kind;
  }

  /**
   * Every id_token from now on carries `email` (and `email_verified` when `verified` is given), the
   * OpenID Connect Core §5.1 standard claims; null (the default: we found no `email` in Epic's
   * documented id_tokens) sends neither.
   */
  setIdTokenEmail(address: string | null, options: { verified?: boolean } = {}): void {
    this.state.idTokenEmail = address === null ? null : { address, verified: options.verified };
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
    this.state.faults.length = 0;
  }

  /** Every access token issued so far expires now (refresh tokens stay valid). */
  expireAccessTokens(): void {
    for (const record of this.state.accessTokens.values()) {
      record.expiresAt = Math.min(record.expiresAt, this.state.now() - 1);
    }
  }

  /** Revokes one access token. Returns false when the fake never issued it. */
  revokeAccessToken(token: string): boolean {
    const record = this.state.accessTokens.get(token);
    if (record) record.revoked = true;
    return record !== undefined;
  }

  /** Revokes a refresh token, as when a patient removes the app in MyChart (docs/epic-and-smart.md §6). */
  revokeRefreshToken(token: string): boolean {
    const record = this.state.refreshTokens.get(token);
    if (record) record.revoked = true;
    return record !== undefined;
  }

  /**
   * Makes discovery advertise another token endpoint (a compromised or re-pointed discovery
   * document); `undefined` restores the fake's own.
   */
  advertiseTokenEndpoint(url: string | undefined): void {
    this.state.advertisedTokenUrl = url;
  }

  /** The same for the revocation endpoint (served with `revocationEndpoint: true`). */
  advertiseRevocationEndpoint(url: string | undefined): void {
    this.state.advertisedRevocationUrl = url;
  }

  /**
   * Revokes every access and refresh token issued to a client, as when a patient removes the app in
   * MyChart or an Epic administrator ends its access. Returns how many refresh tokens died.
   */
  revokeClientGrants(clientId: string): number {
    for (const record of this.state.accessTokens.values()) {
      if (record.clientId === clientId) record.revoked = true;
    }
    let count = 0;
    for (const record of this.state.refreshTokens.values()) {
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
    this.state.clockOffsetMs += ms;
  }

  /** The fake's clock, in ms since the epoch. */
  now(): number {
    return this.state.now();
  }

  /** The requests received so far, oldest first, optionally for one endpoint and grant type. */
  requests(endpoint?: FakeEpicEndpoint, filter: { grantType?: string } = {}): FakeEpicRequest[] {
    return this.state.log.filter(
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
    this.state.log.length = 0;
  }

  /** The client JWK Set URLs the fake fetched, in order (to assert on Epic-like caching). */
  jwksFetches(): string[] {
    return [...this.state.auth.jwksFetches];
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
    const access = this.state.accessTokens.get(token);
    if (access) {
      const { clientId, scopes, patient, expiresAt } = access;
      return {
        kind: 'access',
        active: this.state.accessTokenProblem(access) === undefined,
        clientId,
        scopes,
        patient,
        expiresAt,
      };
    }
    const refresh = this.state.refreshTokens.get(token);
    if (refresh) {
      const active = this.state.refreshTokenProblem(refresh) === undefined;
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
    this.state.store.put(resource);
  }

  /**
   * Compresses the answers of the FHIR API (resources, searches, metadata, Bulk Data files) in
   * `coding` when the request's Accept-Encoding lists it, as web servers in front of FHIR servers
   * do (RFC 9110 §8.4); `undefined` (the default) answers uncompressed whatever is asked.
   */
  compressAnswers(coding: FakeEpicCoding | undefined): void {
    this.state.answerCoding = coding;
  }

  /**
   * Answers every FHIR request (not OAuth, discovery or metadata) `ms` after it arrives, as a server
   * across a network does: a fixed time, or one drawn evenly from `{ min, max }` per request (a real
   * server's times vary, which keeps concurrent callers from moving in lockstep). With `seed`, the
   * times come from a seeded generator, restarted by each call: two runs that each set the same seed
   * draw the same times, so their latencies compare without the draw's noise. The wait is a timer,
   * so it costs the process no CPU. 0 (the default) answers at once.
   */
  answerFhirAfter(ms: number | { min: number; max: number; seed?: number }): void {
    const { min, max } = typeof ms === 'number' ? { min: ms, max: ms } : ms;
    const seed = typeof ms === 'number' ? undefined : ms.seed;
    this.state.fhirLatencyMs = { min, max, draw: seed === undefined ? Math.random : seeded(seed) };
  }

  /**
   * Makes every search of `type` answer a generated searchset Bundle of `entries` resources of about
   * `bytesPerEntry` bytes each, written piece by piece (the fake never holds it whole), with `fullUrl`s
   * under the FHIR base. `undefined` restores normal searches. Returns how many bytes of entries
   * it has generated so far (to compare with what a reader received).
   */
  serveLargeSearch(type: string, size: { entries: number; bytesPerEntry: number } | undefined): () => number {
    if (!size) {
      this.state.largeSearches.delete(type);
      return () => 0;
    }
    const large = { ...size, produced: 0 };
    this.state.largeSearches.set(type, large);
    return () => large.produced;
  }

  /**
   * How Bulk Data answers from now on (bulk-data.ts): the defaults with `settings` over them
   * (`bulkData()` restores the defaults). Returns how many bytes of generated large files the fake
   * has produced so far (to compare with what a reader received).
   */
  bulkData(settings: Partial<BulkDataSettings> = {}): () => number {
    this.state.bulk = { ...DEFAULT_BULK_SETTINGS, ...settings };
    return () => this.state.bulkBytesProduced;
  }

  /** The ids of the Bulk Data exports still known (neither cancelled nor unknown). */
  bulkJobs(): string[] {
    return [...this.state.bulkJobs.keys()];
  }

  /** A seeded or added resource, as the FHIR API would return it. */
  resource(type: string, id: string): FhirResource | undefined {
    return this.state.store.get(type, id);
  }

  async close(): Promise<void> {
    this.router.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
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

/** A small seeded generator of numbers in [0, 1) (mulberry32): the same seed, the same sequence. */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
