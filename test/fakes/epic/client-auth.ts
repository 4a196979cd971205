import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

import {
  compactVerify,
  decodeJwt,
  decodeProtectedHeader,
  importJWK,
  type JSONWebKeySet,
  type JWK,
} from 'jose';

import type { FakeEpicClient } from './types';

export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';

export type ClientAuthResult =
  | { ok: true; client: FakeEpicClient; method: ClientAuthMethod }
  | { ok: false; error: 'invalid_client' | 'invalid_request'; reason: string; clientId?: string };

/**
 * Epic caches a client's JWK Set for up to 29 hours; `Cache-Control` can shorten it (Epic OAuth 2.0 spec,
 * "Hosting a JWK Set URL": https://fhir.epic.com/Documentation?docId=oauth2).
 */
const JWKS_MAX_CACHE_MS = 29 * 3600 * 1000;
const ASSERTION_MAX_LIFETIME_S = 300;
const RSA_ALGS = ['RS256', 'RS384', 'RS512'];
const EC_ALGS = ['ES256', 'ES384'];

interface CachedJwks {
  keys: JWK[];
  expiresAt: number;
}

export interface ClientAuthDeps {
  findClient(clientId: string): FakeEpicClient | undefined;
  /** The fake's clock (ms): ages the JWKS cache. */
  now(): number;
  basicAuthDecoding: 'form-urlencoded' | 'raw';
  extraAssertionAudiences: string[];
  assertionClockToleranceSeconds: number;
  /** `fetch-every-call`: ignore the cache and fetch the JWK Set during every assertion's check. */
  clientJwksCache?: 'honour-cache-control' | 'fetch-every-call';
}

const reject = (reason: string, clientId?: string): ClientAuthResult => ({
  ok: false,
  error: 'invalid_client',
  reason,
  clientId,
});

function sameSecret(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}

function formDecode(value: string): string {
  return decodeURIComponent(value.replace(/\+/g, ' '));
}

/**
 * Client authentication at the token (and revocation) endpoint: `client_secret_basic`,
 * `client_secret_post`, `private_key_jwt`, or a public client's bare `client_id`.
 */
export class ClientAuthenticator {
  private readonly jwksCache = new Map<string, CachedJwks>();
  /** `${clientId} ${jti}` → assertion expiry (wall clock, ms). */
  private readonly seenJti = new Map<string, number>();
  readonly jwksFetches: string[] = [];

  constructor(private readonly deps: ClientAuthDeps) {}

  async authenticate(
    req: IncomingMessage,
    form: Record<string, string>,
    tokenUrl: string,
  ): Promise<ClientAuthResult> {
    const header = req.headers.authorization;
    const basic = header !== undefined && /^basic /i.test(header);
    const post = form.client_secret !== undefined;
    const jwt = form.client_assertion !== undefined || form.client_assertion_type !== undefined;
    if (Number(basic) + Number(post) + Number(jwt) > 1) {
      // RFC 6749 §2.3: a client must not use more than one authentication method per request.
      return { ok: false, error: 'invalid_request', reason: 'more than one client authentication method' };
    }
    if (basic) return this.basic(header.slice(6).trim(), form);
    if (post) return this.secret(form.client_id, form.client_secret, 'client_secret_post');
    if (jwt) return this.assertion(form, tokenUrl);
    const client = form.client_id ? this.deps.findClient(form.client_id) : undefined;
    if (!client) {
      return reject(form.client_id ? 'unknown client_id' : 'no client authentication', form.client_id);
    }
    if (client.type !== 'public') return reject('confidential client sent no credentials', client.clientId);
    return { ok: true, client, method: 'none' };
  }

  private basic(encoded: string, form: Record<string, string>): ClientAuthResult {
    const decoded = Buffer.from(encoded, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return reject('malformed Basic credentials');
    let clientId = decoded.slice(0, colon);
    let secret = decoded.slice(colon + 1);
    // Epic documents base64(urlencode(id):urlencode(secret)), as RFC 6749 §2.3.1 does; a developer reported
    // success only without the URL-encoding (http://community.fhir.org/t/invalid-client-error-from-epic/4312),
    // hence the `raw` switch.
    if (this.deps.basicAuthDecoding === 'form-urlencoded') {
      try {
        clientId = formDecode(clientId);
        secret = formDecode(secret);
      } catch {
        return reject('Basic credentials are not valid form-urlencoding');
      }
    }
    if (form.client_id !== undefined && form.client_id !== clientId) {
      return {
        ok: false,
        error: 'invalid_request',
        reason: 'client_id in the body differs from Basic',
        clientId,
      };
    }
    return this.secret(clientId, secret, 'client_secret_basic');
  }

  private secret(clientId: string | undefined, secret: string, method: ClientAuthMethod): ClientAuthResult {
    const client = clientId ? this.deps.findClient(clientId) : undefined;
    if (!client) return reject('unknown client_id', clientId);
    if (!client.secret) return reject('client has no secret registered', client.clientId);
    if (!sameSecret(secret, client.secret)) return reject('wrong client secret', client.clientId);
    return { ok: true, client, method };
  }

  /** `private_key_jwt`, with Epic's claim rules (docs/epic-and-smart.md §3). */
  private async assertion(form: Record<string, string>, tokenUrl: string): Promise<ClientAuthResult> {
    if (form.client_assertion_type !== JWT_BEARER_ASSERTION) {
      return reject('unsupported client_assertion_type');
    }
    const jwt = form.client_assertion;
    if (!jwt) return reject('client_assertion missing');
    let claims: Record<string, unknown>;
    let alg: string | undefined;
    let kid: string | undefined;
    let jku: string | undefined;
    try {
      claims = decodeJwt(jwt);
      ({ alg, kid, jku } = decodeProtectedHeader(jwt));
    } catch {
      return reject('client_assertion is not a JWT');
    }
    const clientId = typeof claims.iss === 'string' ? claims.iss : undefined;
    const client = clientId ? this.deps.findClient(clientId) : undefined;
    if (!client) return reject('client_assertion iss is not a known client', clientId);
    if (form.client_id !== undefined && form.client_id !== client.clientId) {
      return reject('client_id differs from the assertion iss', client.clientId);
    }
    if (!client.jwks && !client.jwksUrl) return reject('client has no JWT keys registered', client.clientId);
    // Epic: RS256/384/512 for every client, ES256/ES384 only with a JWK Set URL (Epic OAuth 2.0 spec,
    // "Creating a JWT").
    const allowed = client.jwksUrl ? [...RSA_ALGS, ...EC_ALGS] : RSA_ALGS;
    if (!alg || !allowed.includes(alg)) {
      return reject(`alg ${alg} not accepted for this client`, client.clientId);
    }
    if (jku !== undefined && jku !== client.jwksUrl) {
      return reject('jku differs from the registered JWK Set URL', client.clientId);
    }

    const verified = await this.verifySignature(client, jwt, alg, kid);
    if (verified !== true) return reject(verified, client.clientId);

    const problem = this.checkClaims(client.clientId, claims, tokenUrl);
    if (problem) return reject(problem, client.clientId);
    this.seenJti.set(`${client.clientId} ${String(claims.jti)}`, Number(claims.exp) * 1000);
    return { ok: true, client, method: 'private_key_jwt' };
  }

  private async verifySignature(
    client: FakeEpicClient,
    jwt: string,
    alg: string,
    kid?: string,
  ): Promise<true | string> {
    // Epic re-fetches the JWK Set only when the cache expired or no cached key verifies (Epic OAuth 2.0
    // spec, "Hosting a JWK Set URL").
    for (const refresh of [false, true]) {
      if (refresh && !client.jwksUrl) break;
      const keys = client.jwksUrl ? await this.fetchJwks(client.jwksUrl, refresh) : (client.jwks?.keys ?? []);
      if (typeof keys === 'string') return keys;
      const candidates = keys.filter((k) => (kid ? k.kid === kid : true) && (!k.alg || k.alg === alg));
      for (const jwk of candidates) {
        try {
          await compactVerify(jwt, await importJWK(jwk, alg), { algorithms: [alg] });
          return true;
        } catch {
          // try the next key
        }
      }
    }
    return kid
      ? `no registered key with kid ${kid} verifies the assertion`
      : 'no registered key verifies the assertion';
  }

  private async fetchJwks(url: string, force: boolean): Promise<JWK[] | string> {
    const cached = this.jwksCache.get(url);
    const useCache = !force && this.deps.clientJwksCache !== 'fetch-every-call';
    if (useCache && cached && cached.expiresAt > this.deps.now()) return cached.keys;
    this.jwksFetches.push(url);
    try {
      const res = await fetch(url, {
        signal: AbortSignal.timeout(5000),
        headers: { Accept: 'application/json' },
      });
      if (!res.ok) return `JWK Set URL answered ${res.status}`;
      const body = (await res.json()) as JSONWebKeySet;
      if (!Array.isArray(body.keys)) return 'JWK Set URL did not return a JWK Set';
      const maxAge = /max-age=(\d+)/.exec(res.headers.get('cache-control') ?? '');
      const ttl = maxAge ? Math.min(Number(maxAge[1]) * 1000, JWKS_MAX_CACHE_MS) : JWKS_MAX_CACHE_MS;
      this.jwksCache.set(url, { keys: body.keys, expiresAt: this.deps.now() + ttl });
      return body.keys;
    } catch (err) {
      return `could not fetch the JWK Set: ${(err as Error).message}`;
    }
  }

  /**
   * Claims are checked against the wall clock, not the fake's clock: the client stamps them with its own
   * clock, which `advanceClock` does not move.
   */
  private checkClaims(
    clientId: string,
    claims: Record<string, unknown>,
    tokenUrl: string,
  ): string | undefined {
    const now = Date.now() / 1000;
    const tolerance = this.deps.assertionClockToleranceSeconds;
    if (claims.sub !== clientId) return 'sub must equal iss and client_id';
    // Epic: aud is the exact token endpoint URL (orgs behind a proxy allowlist more).
    const audiences = [tokenUrl, ...this.deps.extraAssertionAudiences];
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!aud.some((a) => typeof a === 'string' && audiences.includes(a))) {
      return `aud ${JSON.stringify(claims.aud)} is not the token endpoint ${tokenUrl}`;
    }
    // Epic (Nov 2024+): jti is a string of at most 151 characters, never reused before it expires.
    if (typeof claims.jti !== 'string' || claims.jti.length === 0) return 'jti must be a non-empty string';
    if (claims.jti.length > 151) return 'jti is longer than 151 characters';
    if (typeof claims.exp !== 'number') return 'exp missing';
    if (claims.exp <= now) return 'exp is in the past';
    if (claims.exp > now + ASSERTION_MAX_LIFETIME_S + tolerance) return 'exp is more than 5 minutes ahead';
    for (const name of ['iat', 'nbf'] as const) {
      const value = claims[name];
      if (value === undefined) continue;
      if (typeof value !== 'number') return `${name} must be a number`;
      if (value > now + tolerance) return `${name} is in the future`;
    }
    if (typeof claims.iat === 'number' && claims.exp - claims.iat > ASSERTION_MAX_LIFETIME_S) {
      return 'exp - iat is more than 5 minutes';
    }
    const key = `${clientId} ${claims.jti}`;
    const seenUntil = this.seenJti.get(key);
    if (seenUntil !== undefined && seenUntil > Date.now()) return 'jti was already used';
    for (const [k, until] of this.seenJti) if (until <= Date.now()) this.seenJti.delete(k);
    return undefined;
  }
}
