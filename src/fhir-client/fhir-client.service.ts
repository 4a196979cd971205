import type { Readable } from 'node:stream';

import { HttpService } from '@nestjs/axios';
import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { AxiosInstance } from 'axios';
import type { Bundle, CapabilityStatement, FhirResource } from 'fhir/r4';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { CredentialRef, TokenRefreshService } from 'src/epic-auth/token-refresh.service';
import { CredentialTarget } from 'src/connections/token-store.service';

import { FhirClientError, FhirErrorKind } from './fhir-client.errors';
import { FhirInterceptors, toFhirError } from './fhir-interceptors';
import { isRetryableForward } from './retry-policy';

export type FhirResourceType = FhirResource['resourceType'];
export type ResourceOf<T extends FhirResourceType> = Extract<FhirResource, { resourceType: T }>;
export type SearchParams = Record<string, string | number | boolean | (string | number)[]>;

export interface SearchOptions {
  /** Follow `next` links and return one Bundle with every page's entries. */
  allPages?: boolean;
  /** With allPages, stop after this many pages (default 20). */
  maxPages?: number;
}

/** A request to pass to the FHIR server as it came (FhirClientService.forward). */
export interface ForwardRequest {
  method: string;
  /** Under the FHIR base, without a leading slash: `Patient/123`, `Observation/_search`; '' for the base. */
  path: string;
  /** The query string as received, without `?` ('' for none). */
  query?: string;
  /** The caller's headers: only FORWARDED_REQUEST_HEADERS are sent on (never Authorization or cookies). */
  headers?: Readonly<Record<string, string | string[] | undefined>>;
  /** The body, read whole (bounded by the caller), so that a replay after a 401 can send it again. */
  body?: Buffer;
  /** The longest wait before a retry; a longer Retry-After fails at once (default FHIR_RETRY_MAX_WAIT_SECONDS). */
  maxWaitSeconds?: number;
  /** Aborts the call (the caller went away). */
  signal?: AbortSignal;
  /** Told at once of each 429 the server answers (before any retry): the gateway's throttle. */
  onThrottled?: (retryAfterSeconds: number | null) => void;
}

/** The FHIR server's answer, whatever its status, with its body as a stream. */
export interface ForwardResponse {
  status: number;
  /** Only FORWARDED_RESPONSE_HEADERS, lower-case names. */
  headers: Record<string, string>;
  /** The body, decompressed; read it or destroy it. */
  stream: Readable;
  /** The FHIR base the request went to: every URL under it in the answer points at that server. */
  fhirBaseUrl: string;
}

/** Request headers a FHIR interaction is defined by (FHIR R4 §3.1.0 "RESTful API"); no other goes on. */
export const FORWARDED_REQUEST_HEADERS = [
  'accept',
  'content-type',
  'prefer',
  'if-match',
  'if-none-exist',
  'if-none-match',
  'if-modified-since',
] as const;

/**
 * Response headers a FHIR client reads (versions, new locations, the wait asked for, a Bulk Data
 * job's progress and the manifest's expiry); no other comes back.
 */
export const FORWARDED_RESPONSE_HEADERS = [
  'content-type',
  'etag',
  'last-modified',
  'location',
  'content-location',
  'retry-after',
  'preference-applied',
  'x-progress',
  'expires',
] as const;

/** A path segment under the FHIR base: types, ids, `_history`, `_search`, `$operation`, `metadata`. */
const PATH_SEGMENT = /^[A-Za-z0-9\-_.$]{1,128}$/;

/** The segments of a forwarded path, or null when it could leave the FHIR base (`..`, `%2F`, `//`). */
export function forwardPathSegments(path: string): string[] | null {
  if (path === '') return [];
  const segments = path.split('/');
  const safe = segments.every((s) => PATH_SEGMENT.test(s) && s !== '.' && s !== '..');
  return safe ? segments : null;
}

/** A FHIR resource type name (`Patient`): the one pattern for every module that checks one. */
export const RESOURCE_TYPE_PATTERN = /^[A-Z][A-Za-z]{1,63}$/;
/** FHIR R4 id: [A-Za-z0-9\-\.]{1,64}. Anything else would change the request path. */
const RESOURCE_ID = /^[A-Za-z0-9\-.]{1,64}$/;

/**
 * Reads from Epic on behalf of one connection. Tokens, refresh, retries and error classification
 * happen in FhirInterceptors; every method rejects with a FhirClientError.
 */
export class FhirClient {
  constructor(
    private readonly http: AxiosInstance,
    private readonly target: CredentialTarget,
  ) {}

  /** `GET [base]/{type}/{id}`. */
  async read<T extends FhirResourceType>(type: T, id: string): Promise<ResourceOf<T>> {
    checkType(type);
    if (!RESOURCE_ID.test(id)) {
      throw new FhirClientError(FhirErrorKind.Request, `"${id.slice(0, 80)}" is not a valid FHIR id.`);
    }
    return this.get<ResourceOf<T>>(`${type}/${encodeURIComponent(id)}`);
  }

  /** `GET [base]/{type}?params`; with `allPages`, every page's entries in one Bundle. */
  async search<T extends FhirResourceType>(
    type: T,
    params: SearchParams = {},
    options: SearchOptions = {},
  ): Promise<Bundle<ResourceOf<T>>> {
    checkType(type);
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      for (const item of Array.isArray(value) ? value : [value]) query.append(key, String(item));
    }
    const first = await this.get<Bundle<ResourceOf<T>>>(
      `${type}${query.size > 0 ? `?${query.toString()}` : ''}`,
    );
    if (!options.allPages) return first;
    const entries = [...(first.entry ?? [])];
    let page = first;
    for (let pages = 1; pages < (options.maxPages ?? 20); pages++) {
      const next = page.link?.find((link) => link.relation === 'next')?.url;
      if (!next) break;
      page = await this.get<Bundle<ResourceOf<T>>>(next);
      entries.push(...(page.entry ?? []));
    }
    return { ...first, entry: entries, link: first.link?.filter((link) => link.relation !== 'next') };
  }

  /** `GET [base]/metadata`: the server's CapabilityStatement. */
  capabilities(): Promise<CapabilityStatement> {
    return this.get<CapabilityStatement>('metadata');
  }

  private async get<T>(url: string): Promise<T> {
    const response = await this.http.get<T>(url, { fhir: { target: this.target, retries: 0 } });
    return response.data;
  }
}

function checkType(type: string): void {
  if (!RESOURCE_TYPE_PATTERN.test(type)) {
    throw new FhirClientError(FhirErrorKind.Request, `"${type.slice(0, 80)}" is not a FHIR resource type.`);
  }
}

/**
 * FHIR clients for stored Epic connections. The axios instance is private to this module
 * (HttpModule.register in FhirClientModule) and carries the interceptors; the global axios is untouched.
 */
@Injectable()
export class FhirClientService implements OnModuleInit {
  /**
   * HttpModule's instance. @nestjs/axios is an ES module and sees axios's ESM typings, this CommonJS
   * build sees the CJS ones: the same instance at run time, two declarations of its type.
   */
  private readonly http: AxiosInstance;

  constructor(
    httpService: HttpService,
    private readonly interceptors: FhirInterceptors,
    private readonly refresher: TokenRefreshService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.http = httpService.axiosRef as unknown as AxiosInstance;
  }

  onModuleInit(): void {
    this.interceptors.install(this.http);
  }

  /**
   * Refreshes a connection ahead of use (the scheduled check): one refresh per credential across
   * instances, failures classified and recorded as for any call. Never rejects.
   */
  async refreshOrganizationConnection(
    credential: CredentialRef,
    now = new Date(),
  ): Promise<'refreshed' | 'reused' | FhirErrorKind> {
    try {
      const result = await this.refresher.refresh(credential, 'scheduled', now);
      return result.refreshed ? 'refreshed' : 'reused';
    } catch (error) {
      return toFhirError(error).kind;
    }
  }

  /** The organization's own connection (the one its admin connected). */
  forOrganization(organizationId: string): FhirClient {
    return new FhirClient(this.http, { organizationId });
  }

  /** One stored credential by id: a provider's or a patient's own connection. */
  forCredential(credentialId: string): FhirClient {
    return new FhirClient(this.http, { credentialId });
  }

  /**
   * Sends a caller's FHIR request to the connection's server as it came (method, path, query, the
   * FHIR headers, body) and returns the server's answer as a stream, whatever its status. The same
   * interceptors as every call attach the connection's token, refresh it before it ends and once on
   * a 401 (replaying the request), and record lastSync and lastError. Rejects with a FhirClientError
   * only when there is no answer to give: no usable connection, a network failure or timeout, or a
   * transient failure (5xx, 429) of a retryable request whose retries ran out or whose Retry-After
   * is longer than `maxWaitSeconds` (`retryAfterSeconds`). Retryable: isRetryableForward.
   */
  async forward(target: CredentialTarget, request: ForwardRequest): Promise<ForwardResponse> {
    if (forwardPathSegments(request.path) === null) {
      throw new FhirClientError(FhirErrorKind.Request, 'The path is not a FHIR path.');
    }
    const headers: Record<string, string> = {};
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const value = request.headers?.[name];
      const text = Array.isArray(value) ? value.join(', ') : value;
      if (text !== undefined && text !== '') headers[name] = text;
    }
    const query = request.query ?? '';
    const method = request.method.toUpperCase();
    const retryable = isRetryableForward(method, request.path, query, headers);
    const maxWaitSeconds = request.maxWaitSeconds ?? this.config.env.FHIR_RETRY_MAX_WAIT_SECONDS;
    const response = await this.http.request<Readable>({
      method,
      url: `${request.path}${query ? `?${query}` : ''}`,
      headers,
      data: request.body,
      responseType: 'stream',
      // Streamed through, never held: the instance's response cap is for the answers it parses.
      maxContentLength: -1,
      // 3xx (a 304 to If-None-Match) is an answer; 4xx and 5xx come back from the interceptors.
      validateStatus: (status) => status < 400,
      signal: request.signal,
      fhir: {
        target,
        retries: 0,
        forward: { retryable, maxWaitMs: maxWaitSeconds * 1000, onThrottled: request.onThrottled },
      },
    });
    const answered: Record<string, string> = {};
    for (const name of FORWARDED_RESPONSE_HEADERS) {
      const value: unknown = response.headers[name];
      if (typeof value === 'string' || typeof value === 'number') answered[name] = String(value);
    }
    return {
      status: response.status,
      headers: answered,
      stream: response.data,
      fhirBaseUrl: response.config.fhir!.credential!.fhirBaseUrl,
    };
  }
}
