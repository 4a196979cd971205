import { HttpService } from '@nestjs/axios';
import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { AxiosInstance } from 'axios';
import type { Bundle, CapabilityStatement, FhirResource } from 'fhir/r4';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { CredentialRef, TokenRefreshService } from 'src/epic-auth/token-refresh.service';
import { CredentialTarget } from 'src/connections/token-store.service';

import { FhirClientError, FhirErrorKind } from './fhir-client.errors';
import { toFhirError } from './fhir-call-policy';
import { FhirForwarder } from './fhir-forwarder';
import { FhirInterceptors } from './fhir-interceptors';
import { ForwardRequest, ForwardResponse } from './forwarding';

export {
  FORWARDED_REQUEST_HEADERS,
  FORWARDED_RESPONSE_HEADERS,
  forwardPathSegments,
  ForwardRequest,
  ForwardResponse,
} from './forwarding';

export type FhirResourceType = FhirResource['resourceType'];
export type ResourceOf<T extends FhirResourceType> = Extract<FhirResource, { resourceType: T }>;
export type SearchParams = Record<string, string | number | boolean | (string | number)[]>;

export interface SearchOptions {
  /** Follow `next` links and return one Bundle with every page's entries. */
  allPages?: boolean;
  /** With allPages, stop after this many pages (default 20). */
  maxPages?: number;
}

/** A FHIR resource type name (`Patient`): the one pattern for every module that checks one. */
export const RESOURCE_TYPE_PATTERN = /^[A-Z][A-Za-z]{1,63}$/;
/** FHIR R4 id: [A-Za-z0-9\-\.]{1,64}. Anything else would change the request path. */
const RESOURCE_ID = /^[A-Za-z0-9\-.]{1,64}$/;

/**
 * Reads from Epic on behalf of one connection. Tokens, refresh, retries and error classification
 * happen in FhirInterceptors (around FhirCallPolicy); every method rejects with a FhirClientError.
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
    private readonly forwarder: FhirForwarder,
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
   * policy as every call (FhirCallPolicy) attaches the connection's token, refreshes it before it
   * ends and once on a 401 (replaying the request), and records lastSync and lastError; the
   * exchange itself is FhirForwarder's, on node:http. Rejects with a FhirClientError only when there
   * is no answer to give: no usable connection, a network failure or timeout, or a transient failure
   * (5xx, 429) of a retryable request whose retries ran out or whose Retry-After is longer than
   * `maxWaitSeconds` (`retryAfterSeconds`). Retryable: isRetryableForward.
   */
  forward(target: CredentialTarget, request: ForwardRequest): Promise<ForwardResponse> {
    return this.forwarder.forward(target, request);
  }
}
