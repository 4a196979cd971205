import { Inject, Injectable, Logger } from '@nestjs/common';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { EpicRegistration } from 'src/organizations/organization.types';
import { blockedAddressError } from 'src/outbound/outbound-guard';
import { OutboundHttp } from 'src/outbound/outbound-http.service';

import { EpicAuthError, EpicAuthErrorCode } from './epic-auth.errors';
import {
  checkSmartConfiguration,
  ClientAuthMethod,
  parseCapabilityStatement,
  parseSmartConfiguration,
  SmartConfiguration,
} from './smart-configuration';

export interface DiscoverOptions {
  /**
   * Sent as `Epic-Client-ID`: an organization can override endpoints per client
   * (https://fhir.epic.com/Documentation?docId=oauth2, EHR launch step 2).
   */
  clientId?: string;
  authMethod?: ClientAuthMethod;
  /** The clock, for cache expiry (tests pass dates instead of faking timers). */
  now?: Date;
}

/** How long a result found through `/metadata` is reused before the well-known document is tried again. */
const FALLBACK_CACHE_SECONDS = 60;

interface Fetched {
  ok: boolean;
  json?: unknown;
  /** What went wrong, for the admin: "answered 404", "timed out after 10000 ms", "did not return JSON". */
  problem?: string;
  cause?: unknown;
}

/**
 * Finds a SMART server's authorize and token endpoints: `{base}/.well-known/smart-configuration`
 * first, then the CapabilityStatement at `{base}/metadata`. Results are cached per base URL and
 * client id for DISCOVERY_CACHE_SECONDS; concurrent lookups share one request.
 * @see https://hl7.org/fhir/smart-app-launch/conformance.html and docs/epic-and-smart.md §1
 */
@Injectable()
export class SmartDiscoveryService {
  private readonly logger = new Logger(SmartDiscoveryService.name);
  private readonly cache = new Map<string, { expiresAt: number; config: SmartConfiguration }>();
  private readonly inFlight = new Map<string, Promise<SmartConfiguration>>();

  constructor(
    @Inject(APP_CONFIG) private readonly appConfig: AppConfig,
    private readonly outbound: OutboundHttp,
  ) {}

  /**
   * The SMART endpoints of an organization's registered server, as its client sees them: its FHIR
   * base, with its client ID (`Epic-Client-ID`) and client authentication method.
   */
  discoverFor(
    registration: Pick<EpicRegistration, 'fhirBaseUrl' | 'clientId' | 'tokenAuthMethod'>,
  ): Promise<SmartConfiguration> {
    return this.discover(registration.fhirBaseUrl, {
      clientId: registration.clientId,
      authMethod: registration.tokenAuthMethod,
    });
  }

  async discover(fhirBaseUrl: string, options: DiscoverOptions = {}): Promise<SmartConfiguration> {
    const base = withoutTrailingSlashes(fhirBaseUrl);
    const authMethod = options.authMethod ?? 'client_secret_basic';
    const key = `${base}\n${options.clientId ?? ''}\n${authMethod}`;
    const now = (options.now ?? new Date()).getTime();
    const cached = this.cache.get(key);
    if (cached && cached.expiresAt > now) return cached.config;

    const running = this.inFlight.get(key);
    if (running) return running;
    const job = this.fetchAndCheck(base, options.clientId, authMethod)
      .then((config) => {
        // A result from the fallback route is kept briefly: the well-known document may have failed
        // only for a moment, and it is the one that names the OpenID issuer and keys reliably.
        const seconds =
          config.source === 'metadata'
            ? Math.min(FALLBACK_CACHE_SECONDS, this.appConfig.env.DISCOVERY_CACHE_SECONDS)
            : this.appConfig.env.DISCOVERY_CACHE_SECONDS;
        this.cache.set(key, { config, expiresAt: now + seconds * 1000 });
        return config;
      })
      .finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, job);
    return job;
  }

  /** Forgets what was discovered for a base URL (after its registration changes). */
  forget(fhirBaseUrl: string): void {
    const base = withoutTrailingSlashes(fhirBaseUrl);
    for (const key of this.cache.keys()) if (key.startsWith(`${base}\n`)) this.cache.delete(key);
  }

  private async fetchAndCheck(
    base: string,
    clientId: string | undefined,
    authMethod: ClientAuthMethod,
  ): Promise<SmartConfiguration> {
    const check = (parsed: Partial<SmartConfiguration>) =>
      checkSmartConfiguration(parsed, { authMethod, allowInsecureLoopback: !this.appConfig.isProduction });
    const clientHeader: Record<string, string> = clientId ? { 'Epic-Client-ID': clientId } : {};

    const wellKnown = await this.getJson(`${base}/.well-known/smart-configuration`, {
      Accept: 'application/json',
      ...clientHeader,
    });
    if (wellKnown.ok) {
      const parsed = parseSmartConfiguration(wellKnown.json);
      // A document with both endpoints is authoritative; only a missing one sends us to /metadata.
      if (parsed.authorizationEndpoint && parsed.tokenEndpoint) return this.accept(base, check(parsed));
    }

    // Epic: /metadata answers XML unless JSON is asked for, and needs Epic-Client-ID
    // (docs/epic-and-smart.md §1).
    const metadata = await this.getJson(`${base}/metadata`, {
      Accept: 'application/fhir+json',
      ...clientHeader,
    });
    if (metadata.ok) {
      const parsed = parseCapabilityStatement(metadata.json);
      if (parsed.authorizationEndpoint && parsed.tokenEndpoint) {
        return this.accept(base, check(await this.withOpenIdFacts(base, parsed)));
      }
    }

    const why = (label: string, f: Fetched) =>
      `${label} ${f.ok ? 'did not advertise the authorize and token endpoints' : f.problem}`;
    this.logger.warn(
      { fhirBase: base, err: wellKnown.cause ?? metadata.cause },
      'SMART discovery failed on both routes',
    );
    throw new EpicAuthError(
      EpicAuthErrorCode.DiscoveryFailed,
      `Could not discover the SMART endpoints of ${base}: ${why('.well-known/smart-configuration', wellKnown)}; ` +
        `${why('metadata', metadata)}. Check the FHIR base URL.`,
      { cause: wellKnown.cause ?? metadata.cause },
    );
  }

  /**
   * A CapabilityStatement names no OpenID issuer or keys, without which no id_token can be checked
   * (every sign-in would be refused). OpenID Connect Discovery at `{base}/.well-known/openid-configuration`
   * (served by Epic since August 2021; https://openid.net/specs/openid-connect-discovery-1_0.html)
   * supplies them when it answers.
   */
  private async withOpenIdFacts(
    base: string,
    parsed: Partial<SmartConfiguration>,
  ): Promise<Partial<SmartConfiguration>> {
    if (parsed.issuer && parsed.jwksUri) return parsed;
    const openid = await this.getJson(`${base}/.well-known/openid-configuration`, {
      Accept: 'application/json',
    });
    if (!openid.ok || !openid.json || typeof openid.json !== 'object') return parsed;
    const doc = openid.json as Record<string, unknown>;
    const str = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : undefined);
    return {
      ...parsed,
      issuer: parsed.issuer ?? str(doc.issuer),
      jwksUri: parsed.jwksUri ?? str(doc.jwks_uri),
    };
  }

  private accept(base: string, result: ReturnType<typeof checkSmartConfiguration>): SmartConfiguration {
    if (!result.ok) {
      throw new EpicAuthError(
        EpicAuthErrorCode.DiscoveryIncompatible,
        `The SMART server at ${base} cannot be used: ${result.problems.join('; ')}.`,
      );
    }
    this.logger.log({ fhirBase: base, source: result.config.source }, 'Discovered SMART endpoints');
    return result.config;
  }

  private async getJson(url: string, headers: Record<string, string>): Promise<Fetched> {
    const timeout = this.appConfig.env.EPIC_HTTP_TIMEOUT_MS;
    try {
      // No redirects: the base URL is admin-supplied, and a redirect could point the server at an
      // internal address (and carry Epic-Client-ID there).
      const res = await this.outbound.fetch(url, {
        headers,
        redirect: 'error',
        signal: AbortSignal.timeout(timeout),
      });
      const length = Number(res.headers.get('content-length') ?? 0);
      if (length > 2_000_000) return { ok: false, problem: 'answered with an oversized document' };
      if (!res.ok) return { ok: false, problem: `answered HTTP ${res.status}` };
      const text = await res.text();
      try {
        return { ok: true, json: JSON.parse(text) as unknown };
      } catch (cause) {
        return { ok: false, problem: 'did not return JSON', cause };
      }
    } catch (cause) {
      // AbortSignal.timeout rejects with a DOMException named TimeoutError (not always an Error instance).
      const timedOut = (cause as { name?: unknown } | null)?.name === 'TimeoutError';
      const blocked = blockedAddressError(cause);
      return {
        ok: false,
        problem: timedOut
          ? `timed out after ${timeout} ms`
          : blocked
            ? `was not contacted: ${blocked.message}`
            : 'could not be reached',
        cause,
      };
    }
  }
}

/**
 * The base that URLs are built on and results cached under (`discover` and `forget` must agree).
 * Case is kept: a server's paths may be case-sensitive.
 */
function withoutTrailingSlashes(fhirBaseUrl: string): string {
  return fhirBaseUrl.replace(/\/+$/, '');
}
