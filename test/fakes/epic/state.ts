import { DEFAULT_BULK_SETTINGS, type BulkDataSettings, type BulkJob } from './bulk-data';
import { ClientAuthenticator } from './client-auth';
import type { LargeSearch } from './fhir-api';
import { FhirStore } from './fhir-store';
import type { FakeEpicCoding } from './http';
import { seedResources } from './fhir-data';
import { mintToken, type ServerKeys, type TokenKind } from './tokens';
import type {
  FakeEpicClient,
  FakeEpicConsent,
  FakeEpicEndpoint,
  FakeEpicFault,
  FakeEpicLaunchContext,
  FakeEpicOptions,
  FakeEpicRequest,
  FakeEpicUser,
} from './types';
import { CLIENT_ENDPOINTS_PATH, fakeEpicUrls, type FakeEpicUrls } from './urls';

/**
 * Every server-wide switch, defaults filled in; `answerCoding` only starts
 * FakeEpicState.answerCoding, a switch tests turn while the server runs.
 */
export type ResolvedOptions = Required<Omit<FakeEpicOptions, 'user' | 'port' | 'answerCoding'>>;

export interface LaunchRecord {
  context: FakeEpicLaunchContext & { practitioner: string };
  expiresAt: number;
  used: boolean;
}

/** Everything an authorization produced; tokens from one grant share it. */
export interface Grant {
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

export interface CodeRecord {
  grant: Grant;
  redirectUri: string;
  challenge?: string;
  expiresAt: number;
  used: boolean;
}

export interface AccessTokenRecord {
  grantId: string;
  clientId: string;
  scopes: string[];
  patient?: string;
  expiresAt: number;
  revoked: boolean;
}

export interface RefreshTokenRecord {
  grant: Grant;
  expiresAt: number;
  revoked: boolean;
  /** Rolling mode: a newer refresh token replaced this one. */
  replaced: boolean;
}

/** An authorize request that passed every check, waiting for the user's login and consent. */
export interface ValidAuthorizeRequest {
  client: FakeEpicClient;
  redirectUri: string;
  state?: string;
  requested: string[];
  challenge?: string;
  nonce?: string;
  launch?: LaunchRecord;
}

export interface ArmedFault {
  endpoint: FakeEpicEndpoint;
  fault: FakeEpicFault;
  remaining: number;
  grantType?: string;
}

function resolveOptions(options: FakeEpicOptions): ResolvedOptions {
  return {
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
    locationHeader: options.locationHeader ?? 'absolute',
    pagingLinks: options.pagingLinks ?? 'search-url',
    jsonSlashEscaping: options.jsonSlashEscaping ?? false,
    clientJwksCache: options.clientJwksCache ?? 'honour-cache-control',
    flavor: options.flavor ?? 'epic',
    idTokenOnRefresh: options.idTokenOnRefresh ?? 'none',
    invalidGrantStatus: options.invalidGrantStatus ?? 400,
    invalidClientStatus: options.invalidClientStatus ?? 400,
    patientContext: options.patientContext ?? 'patient-apps',
  };
}

/**
 * What one fake knows: its URLs and switches, the registered clients, the launches, codes and tokens
 * it issued, the armed faults, the clock and the request log. `FakeEpic` (the test controls), the
 * router and the endpoints all read and change this one object.
 */
export class FakeEpicState {
  readonly urls: FakeEpicUrls;
  readonly options: ResolvedOptions;
  readonly clients = new Map<string, FakeEpicClient>();
  readonly launches = new Map<string, LaunchRecord>();
  readonly codes = new Map<string, CodeRecord>();
  readonly accessTokens = new Map<string, AccessTokenRecord>();
  readonly refreshTokens = new Map<string, RefreshTokenRecord>();
  readonly pendingConsents = new Map<string, ValidAuthorizeRequest>();
  readonly faults: ArmedFault[] = [];
  readonly log: FakeEpicRequest[] = [];
  readonly store: FhirStore = new FhirStore(seedResources(), () => this.now());
  /** Searches paged at the base (`pagingLinks: 'getpages'`), by id. */
  readonly searches = new Map<string, { type: string; params: URLSearchParams }>();
  /** Resource types whose searches answer a generated Bundle (`serveLargeSearch`). */
  readonly largeSearches = new Map<string, LargeSearch>();
  /**
   * Every FHIR request waits between these many ms before it is answered (FakeEpic.answerFhirAfter),
   * `draw()` (0 to 1) choosing where.
   */
  fhirLatencyMs: { min: number; max: number; draw: () => number } = { min: 0, max: 0, draw: Math.random };
  /** FHIR answers compressed in this coding when the request accepts it (`compressAnswers`). */
  answerCoding: FakeEpicCoding | undefined = undefined;
  /** Bulk Data: how it answers (`bulkData`), the jobs by id, bytes of generated large files. */
  bulk: BulkDataSettings = { ...DEFAULT_BULK_SETTINGS };
  readonly bulkJobs = new Map<string, BulkJob>();
  bulkBytesProduced = 0;
  readonly auth: ClientAuthenticator;
  clockOffsetMs = 0;
  /** The user who logs in; `undefined`: the per-audience default. */
  user: FakeEpicUser | undefined;
  consent: FakeEpicConsent = 'approve';
  /** `tamperNextIdToken`: how the next id_token is wrong. */
  idTokenTamper?: 'signature' | 'audience' | 'nonce';
  /** `setIdTokenEmail`: the `email` (and `email_verified`) claims of every id_token; null: none (Epic's default). */
  idTokenEmail: { address: string; verified?: boolean } | null = null;
  advertisedTokenUrl?: string;
  advertisedRevocationUrl?: string;

  constructor(
    readonly keys: ServerKeys,
    origin: string,
    options: FakeEpicOptions,
  ) {
    this.urls = fakeEpicUrls(origin, options.flavor);
    this.user = options.user;
    this.options = resolveOptions(options);
    this.answerCoding = options.answerCoding;
    this.auth = new ClientAuthenticator({
      findClient: (id) => this.clients.get(id),
      now: () => this.now(),
      basicAuthDecoding: this.options.basicAuthDecoding,
      extraAssertionAudiences: this.options.extraAssertionAudiences,
      assertionClockToleranceSeconds: this.options.assertionClockToleranceSeconds,
      clientJwksCache: this.options.clientJwksCache,
    });
  }

  /** The fake's clock, in ms since the epoch. */
  now(): number {
    return Date.now() + this.clockOffsetMs;
  }

  mint(kind: TokenKind, claims: Record<string, unknown>): string {
    return mintToken(kind, claims, {
      tokenFormat: this.options.tokenFormat,
      kid: this.keys.kid,
      issuer: this.urls.issuer,
      now: this.now(),
    });
  }

  /** The authorize and token endpoints a client must use (per client with `endpointsByClientId`). */
  endpointsFor(clientId: string): { authorizeUrl: string; tokenUrl: string } {
    if (!this.options.endpointsByClientId) {
      return { authorizeUrl: this.urls.authorizeUrl, tokenUrl: this.urls.tokenUrl };
    }
    const base = `${this.urls.origin}${CLIENT_ENDPOINTS_PATH}${encodeURIComponent(clientId)}`;
    return { authorizeUrl: `${base}/authorize`, tokenUrl: `${base}/token` };
  }

  refreshTokenProblem(record: RefreshTokenRecord): string | undefined {
    if (record.revoked) return 'the refresh token was revoked';
    if (record.replaced) return 'the refresh token was replaced by a newer one (rolling refresh)';
    if (record.expiresAt <= this.now()) return 'the refresh token expired';
    return undefined;
  }

  accessTokenProblem(record: AccessTokenRecord): string | undefined {
    if (record.revoked) return 'The access token was revoked';
    if (record.expiresAt <= this.now()) return 'The access token expired';
    return undefined;
  }

  /** Revokes every access and refresh token issued from one grant. */
  revokeGrant(grantId: string): void {
    for (const record of this.accessTokens.values()) if (record.grantId === grantId) record.revoked = true;
    for (const record of this.refreshTokens.values()) if (record.grant.id === grantId) record.revoked = true;
  }
}
