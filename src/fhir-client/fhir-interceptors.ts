import type { Readable } from 'node:stream';

import { Inject, Injectable, Logger } from '@nestjs/common';
import { AxiosError, AxiosInstance, AxiosResponse, InternalAxiosRequestConfig, isAxiosError } from 'axios';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { EpicAuthError, EpicAuthErrorCode } from 'src/epic-auth/epic-auth.errors';
import { ConnectionEvents } from 'src/connections/connections.events';
import { ConnectionsService } from 'src/connections/connections.service';
import { RefreshResult, TokenRefreshService } from 'src/epic-auth/token-refresh.service';
import { ActiveCredential, CredentialTarget, TokenStoreService } from 'src/connections/token-store.service';
import { FhirCallOutcome, MetricsService } from 'src/metrics/metrics.service';

import { CredentialCache } from './credential-cache';
import { FhirClientError, FhirErrorKind, operationOutcomeText } from './fhir-client.errors';
import { isIdempotent, isTransientFailure, parseRetryAfter, retryDelay } from './retry-policy';

/** What a FHIR request carries through the interceptors. */
export interface FhirCallContext {
  target: CredentialTarget;
  /** The credential the current attempt used. */
  credential?: ActiveCredential;
  /** Set after a 401: the version whose token was rejected, to be refreshed before the replay. */
  rejectedVersion?: number;
  /** Transient-failure retries done so far. */
  retries: number;
  /** When the first attempt started (performance.now()), for the latency metric. */
  startedAt?: number;
  /**
   * Present on forwarded requests (FhirClientService.forward): the FHIR server's 4xx and 5xx
   * answers are returned (streamed) instead of thrown, except a 401 (refresh and replay) and a
   * transient failure of a retryable request (retried, then thrown).
   */
  forward?: {
    /** The request may be sent again after a transient failure (isRetryableForward). */
    retryable: boolean;
    /** The longest wait before a retry; a longer Retry-After fails at once with retryAfterSeconds. */
    maxWaitMs: number;
    /** Told of each 429 the server answers (its Retry-After in seconds, or null). */
    onThrottled?: (retryAfterSeconds: number | null) => void;
  };
}

declare module 'axios' {
  interface AxiosRequestConfig {
    /** Present on requests made through FhirClientService. */
    fhir?: FhirCallContext;
  }
}

/** How often a healthy connection's lastSync is written (it is read by people, not machines). */
const LAST_SYNC_INTERVAL_MS = 60_000;

/**
 * The axios interceptors of FhirClient's private instance:
 * - request: find the credential (one indexed query), refresh it first when it is due, attach the
 *   bearer token and the organization's FHIR base;
 * - response: on 401 refresh once and replay once; on a network error, timeout, 5xx or 429 retry
 *   idempotent requests with backoff (honouring Retry-After); turn everything else into a
 *   FhirClientError; record lastSync, lastError and recoveries on the connection.
 * Logs carry ids only, never a token.
 */
@Injectable()
export class FhirInterceptors {
  private readonly logger = new Logger('FhirClient');
  /** Per organization, a lastSync/lastError write in progress: a burst of successes writes once. */
  private readonly stateWrites = new Map<string, Promise<void>>();

  constructor(
    private readonly tokens: TokenStoreService,
    private readonly credentials: CredentialCache,
    private readonly refresher: TokenRefreshService,
    private readonly connections: ConnectionsService,
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  install(instance: AxiosInstance): void {
    instance.interceptors.request.use((config) => this.beforeRequest(config));
    instance.interceptors.response.use(
      (response) => this.afterSuccess(response),
      (error: unknown) => this.afterFailure(instance, error),
    );
  }

  private async beforeRequest(config: InternalAxiosRequestConfig): Promise<InternalAxiosRequestConfig> {
    const ctx = config.fhir;
    if (!ctx) return config;
    ctx.startedAt ??= performance.now();
    // After a 401 the credential is read afresh: a sibling may have refreshed it.
    let credential = await this.resolve(ctx.target, ctx.rejectedVersion !== undefined);
    const now = new Date();

    if (ctx.rejectedVersion !== undefined && ctx.rejectedVersion === credential.version) {
      credential = await this.renew(credential, 'unauthorized', now);
    } else if (this.refresher.isDue(credential.expiresAt, now, credential.issuedAt)) {
      credential = await this.renew(credential, 'expiring', now);
    }

    ctx.credential = credential;
    config.baseURL = `${credential.fhirBaseUrl}/`;
    if (ctx.forward && (config.url === '' || config.url?.startsWith('?'))) {
      // The base itself (a batch or transaction, a whole-system search): without the slash that
      // joining it to an empty path would add.
      config.url = `${credential.fhirBaseUrl}${config.url}`;
    }
    const url = config.url;
    const absolute = url !== undefined && (/^[a-z][a-z0-9+.-]*:/i.test(url) || url.startsWith('//'));
    const underBase =
      url !== undefined &&
      (url.startsWith(config.baseURL) ||
        url === credential.fhirBaseUrl ||
        url.startsWith(`${credential.fhirBaseUrl}?`));
    if (absolute && !underBase) {
      // A paging link elsewhere would receive the bearer token: never follow it.
      throw new FhirClientError(FhirErrorKind.Request, 'Epic returned a link outside its FHIR base URL.', {
        organizationId: credential.organizationId,
      });
    }
    config.headers.set('Authorization', `Bearer ${this.tokens.accessToken(credential)}`);
    return config;
  }

  /**
   * Refreshes before the request. A refresh that fails transiently while the current token is still
   * valid is not fatal: the request goes ahead with the current token.
   */
  private async renew(
    credential: ActiveCredential,
    reason: 'expiring' | 'unauthorized',
    now: Date,
  ): Promise<ActiveCredential> {
    if (!credential.refreshable) {
      if (reason === 'expiring' && credential.expiresAt > now) return credential; // still usable
      const dead = await this.refresher.invalidate(
        credential,
        reason === 'unauthorized' ? 'access_token_rejected' : 'no_refresh_token',
      );
      throw toFhirError(dead);
    }
    let renewed: RefreshResult;
    try {
      renewed = await this.refresher.refresh(credential, reason, now);
    } catch (error) {
      const stillValid = reason === 'expiring' && credential.expiresAt > now;
      if (stillValid && error instanceof EpicAuthError && error.code === EpicAuthErrorCode.EpicUnavailable) {
        return credential;
      }
      throw toFhirError(error);
    }
    // Requests that waited on one refresh share one lookup of its result.
    const current = await this.resolve({ credentialId: credential.id });
    return current.version >= renewed.version ? current : this.resolve({ credentialId: credential.id }, true);
  }

  private async resolve(target: CredentialTarget, fresh = false): Promise<ActiveCredential> {
    const credential = await this.credentials.get(target, fresh);
    if (!credential) {
      throw new FhirClientError(
        FhirErrorKind.NotConnected,
        'This organization is not connected to Epic. An admin must connect it on the Epic registration page.',
        { organizationId: 'organizationId' in target ? target.organizationId : undefined },
      );
    }
    return credential;
  }

  private async afterSuccess(response: AxiosResponse): Promise<AxiosResponse> {
    const ctx = response.config.fhir;
    if (ctx?.credential) {
      this.observe(ctx, 'success');
      await this.recordSuccess(ctx.credential);
    }
    return response;
  }

  private async afterFailure(instance: AxiosInstance, error: unknown): Promise<AxiosResponse> {
    if (!isAxiosError(error) || !error.config?.fhir?.credential) throw error; // ours, or not a FHIR call
    const config = error.config;
    const ctx = config.fhir!;
    const credential = ctx.credential!;
    const orgId = credential.organizationId;
    const status = error.response?.status;

    if (status === 401) {
      if (ctx.forward) discard(error.response);
      if (ctx.rejectedVersion !== undefined) {
        // The token was refreshed (or renewed by a sibling) and Epic still refuses it.
        this.logger.warn(
          { orgId, credentialId: credential.id },
          'Epic API call failed with 401 after a refresh',
        );
        this.observe(ctx, 'reauthentication_required');
        throw toFhirError(await this.refresher.invalidate(credential, 'access_token_rejected'));
      }
      this.logger.warn(
        { orgId, credentialId: credential.id },
        'Epic API call failed with 401, attempting refresh',
      );
      ctx.rejectedVersion = credential.version;
      return instance.request(config);
    }

    if (isTransientFailure(status, error.code)) {
      const retryAfterMs = parseRetryAfter(error.response?.headers?.['retry-after'], Date.now());
      // The server's own 429 slows the whole organization down at once (every instance), whether
      // or not this request then waits and retries.
      if (status === 429) ctx.forward?.onThrottled?.(retryAfterMs === undefined ? null : retryAfterMs / 1000);
      const retryable = ctx.forward ? ctx.forward.retryable : isIdempotent(config.method);
      const delay = retryable
        ? retryDelay(
            ctx.retries,
            {
              attempts: this.config.env.FHIR_RETRY_ATTEMPTS,
              maxWaitMs: ctx.forward?.maxWaitMs ?? this.config.env.FHIR_RETRY_MAX_WAIT_SECONDS * 1000,
            },
            retryAfterMs,
          )
        : undefined;
      if (delay !== undefined) {
        if (ctx.forward) discard(error.response);
        ctx.retries += 1;
        this.logger.warn(
          { orgId, status: status ?? null, failure: error.code ?? null, retry: ctx.retries, delayMs: delay },
          `Epic API call failed (${status ?? error.code ?? 'network error'}), retrying in ${delay} ms`,
        );
        await new Promise((resolve) => setTimeout(resolve, delay));
        return instance.request(config);
      }
      this.observe(ctx, 'unavailable');
      const message = transientMessage(error, ctx.retries + 1);
      await this.recordTransient(credential, status ? `http_${status}` : (error.code ?? 'network'), message);
      // A write sent once: the server's own answer (its OperationOutcome, its Retry-After) is the answer.
      if (ctx.forward && error.response && !retryable) return error.response;
      if (ctx.forward) discard(error.response);
      throw new FhirClientError(FhirErrorKind.Unavailable, message, {
        organizationId: orgId,
        status,
        retryAfterSeconds: retryAfterMs !== undefined ? Math.ceil(retryAfterMs / 1000) : undefined,
        network: status === undefined ? (isTimeout(error.code) ? 'timeout' : 'unreachable') : undefined,
        cause: stripRequest(error),
      });
    }

    // The caller went away (its signal aborted): nothing to record, nobody to answer.
    if (ctx.forward && error.code === 'ERR_CANCELED') throw error;

    if (ctx.forward && error.response) {
      // The FHIR server answered (a 4xx other than 401): the connection works, and its answer is
      // the forwarded request's answer.
      this.observe(ctx, 'fhir_error');
      await this.recordSuccess(credential);
      return error.response;
    }

    // A FHIR error: the connection works, the request does not. Reading the data Epic holds.
    const body: unknown = error.response?.data;
    const text = operationOutcomeText(body);
    this.observe(ctx, 'fhir_error');
    await this.recordSuccess(credential);
    throw new FhirClientError(
      FhirErrorKind.Request,
      status === undefined
        ? `The call to Epic could not be made (${error.code ?? 'error'}).`
        : text
          ? `Epic answered HTTP ${status}: ${text}`
          : `Epic answered HTTP ${status}.`,
      {
        organizationId: orgId,
        status,
        operationOutcome: text ? (body as FhirClientError['operationOutcome']) : undefined,
      },
    );
  }

  private observe(ctx: FhirCallContext, outcome: FhirCallOutcome): void {
    if (ctx.startedAt !== undefined) {
      this.metrics.fhirCall(outcome, (performance.now() - ctx.startedAt) / 1000);
    }
  }

  /** Sets lastSync (at most once a minute) and clears lastError after a failure. */
  private async recordSuccess(credential: ActiveCredential): Promise<void> {
    const now = Date.now();
    // A call that works with the current token does not cure a failing refresh: that error stays
    // until a refresh succeeds, or the token runs out.
    const hadError = credential.lastError !== null && !this.refresher.inCooldown(credential.id);
    const stale = !credential.lastSync || now - credential.lastSync.getTime() > LAST_SYNC_INTERVAL_MS;
    if (!hadError && !stale) return;
    const orgId = credential.organizationId;
    const key = credential.userId === null ? orgId : `credential:${credential.id}`;
    const running = this.stateWrites.get(key);
    if (running) return running;
    // The (possibly cached) snapshot now matches what is being written.
    credential.lastSync = new Date(now);
    if (hadError) credential.lastError = null;
    const write = this.connections
      .synced(credential, new Date(now), hadError)
      .then(() => {
        if (hadError) {
          this.logger.log({ orgId }, `Epic connection of organization ${orgId} works again`);
          this.emit(ConnectionEvents.Restored, credential);
        }
      })
      .catch((error: unknown) =>
        this.logger.error({ err: error, orgId }, 'Could not record a successful Epic call'),
      )
      .finally(() => this.stateWrites.delete(key));
    this.stateWrites.set(key, write);
    return write;
  }

  /** Keeps the tokens and isConnected; records lastError and tells ConnectionHealth. */
  private async recordTransient(credential: ActiveCredential, code: string, message: string): Promise<void> {
    const orgId = credential.organizationId;
    this.logger.warn(
      { orgId, credentialId: credential.id, failure: code },
      `Epic API call failed for organization ${orgId}: ${code}`,
    );
    try {
      await this.connections.failed(credential, message);
    } catch (error) {
      this.logger.error({ err: error, orgId }, 'Could not record a failed Epic call');
    }
    this.emit(ConnectionEvents.Degraded, credential, code, message);
  }

  private emit(event: ConnectionEvents, credential: ActiveCredential, code?: string, message?: string): void {
    this.connections.announce(event, credential, code, message);
  }
}

/** Refresh failures in the FHIR client's terms. */
export function toFhirError(error: unknown): FhirClientError {
  if (error instanceof FhirClientError) return error;
  if (error instanceof EpicAuthError) {
    const kind =
      error.code === EpicAuthErrorCode.ReauthenticationRequired
        ? FhirErrorKind.ReauthenticationRequired
        : error.code === EpicAuthErrorCode.NotConnected
          ? FhirErrorKind.NotConnected
          : FhirErrorKind.Unavailable;
    return new FhirClientError(kind, error.message, { organizationId: error.organizationId, cause: error });
  }
  return new FhirClientError(FhirErrorKind.Unavailable, 'The call to Epic failed unexpectedly.', {
    cause: error,
  });
}

function transientMessage(error: AxiosError, attempts: number): string {
  const tries = attempts > 1 ? ` (${attempts} attempts)` : '';
  const status = error.response?.status;
  if (status === 429) {
    return `Epic's FHIR API is rate limiting this client (HTTP 429)${tries}. Try again later.`;
  }
  if (status !== undefined) return `Epic's FHIR API answered HTTP ${status}${tries}. Try again later.`;
  if (isTimeout(error.code)) {
    return `Epic's FHIR API did not answer in time${tries}. Try again later.`;
  }
  return `Epic's FHIR API could not be reached${tries}. Try again later.`;
}

const isTimeout = (code: string | undefined): boolean => code === 'ECONNABORTED' || code === 'ETIMEDOUT';

/** Frees the connection of a forwarded answer that will not be read (a retry or replay follows). */
function discard(response: AxiosResponse | undefined): void {
  (response?.data as Readable | undefined)?.destroy?.();
}

/** An axios error without its request config (which holds the Authorization header), for `cause`. */
function stripRequest(error: AxiosError): Error {
  const plain = new Error(error.message);
  plain.name = error.name;
  Object.assign(plain, { code: error.code, status: error.response?.status });
  return plain;
}
