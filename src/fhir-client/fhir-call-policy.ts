import { Inject, Injectable, Logger } from '@nestjs/common';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { EpicAuthError, EpicAuthErrorCode } from 'src/epic-auth/epic-auth.errors';
import { ConnectionEvents } from 'src/connections/connections.events';
import { ConnectionsService } from 'src/connections/connections.service';
import { RefreshResult, TokenRefreshService } from 'src/epic-auth/token-refresh.service';
import { ActiveCredential, CredentialTarget, TokenStoreService } from 'src/connections/token-store.service';
import { FhirCallOutcome, MetricsService } from 'src/metrics/metrics.service';

import { CredentialCache } from './credential-cache';
import { FhirClientError, FhirErrorKind } from './fhir-client.errors';
import { isTransientFailure, parseRetryAfter, retryDelay } from './retry-policy';

/** One FHIR call across its attempts (a replay after a 401, retries after transient failures). */
export interface FhirCall {
  target: CredentialTarget;
  /** The credential the current attempt used. */
  credential?: ActiveCredential;
  /** Set after a 401: the version whose token was rejected, to be refreshed before the replay. */
  rejectedVersion?: number;
  /** Transient-failure retries done so far. */
  retries: number;
  /** When the first attempt started (performance.now()), for the latency metric. */
  startedAt?: number;
}

/**
 * A call that got no usable answer: a 5xx or 429 (`status`), or no answer at all (`code`: a network
 * failure, a timeout, a refused certificate).
 */
export interface CallFailure {
  status?: number;
  code?: string;
  /** The server's Retry-After header, as sent. */
  retryAfter?: unknown;
  /**
   * The underlying error (Node's, or axios's with its request config): the FhirClientError's cause
   * keeps only its name, message, code and status (plainCause).
   */
  error?: unknown;
}

/** Whether and how long a call may wait for another attempt. */
export interface RetryRule {
  retryable: boolean;
  maxWaitMs: number;
  /** Told of each 429 the server answers (its Retry-After in seconds, or null). */
  onThrottled?: (retryAfterSeconds: number | null) => void;
}

/** How often a healthy connection's lastSync is written (it is read by people, not machines). */
const LAST_SYNC_INTERVAL_MS = 60_000;

/**
 * What every FHIR call does around its HTTP exchange, whichever client sends it (the axios
 * interceptors of FhirClient's reads, FhirForwarder's node:http requests for the gateway):
 * - find the connection's credential (CredentialCache), refresh it first when it is due or after
 *   a 401 (one refresh per credential across instances, through EpicAuth);
 * - after a 401, replay once; after a second, end the connection (re-authentication required);
 * - after a transient failure, wait (backoff, or the server's Retry-After up to a cap) or give up;
 * - record lastSync (at most once a minute), lastError and recoveries on the connection, and the
 *   call's latency metric.
 * Logs carry ids only, never a token.
 */
@Injectable()
export class FhirCallPolicy {
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

  /**
   * The credential for the call's next attempt, renewed first when it is due or its token was
   * just rejected (after a 401 it is read afresh: a sibling may have refreshed it).
   */
  async credentialFor(call: FhirCall): Promise<ActiveCredential> {
    call.startedAt ??= performance.now();
    let credential = await this.resolve(call.target, call.rejectedVersion !== undefined);
    const now = new Date();
    if (call.rejectedVersion !== undefined && call.rejectedVersion === credential.version) {
      credential = await this.renew(credential, 'unauthorized', now);
    } else if (this.refresher.isDue(credential.expiresAt, now, credential.issuedAt)) {
      credential = await this.renew(credential, 'expiring', now);
    }
    call.credential = credential;
    return credential;
  }

  /** The Authorization header value of a credential's token. */
  authorization(credential: ActiveCredential): string {
    return `Bearer ${this.tokens.accessToken(credential)}`;
  }

  /**
   * The server answered 401: the call is to be sent again once with a renewed token. After a
   * renewal the server still refusing ends the connection: rejects with reauthentication_required.
   */
  async rejected(call: FhirCall): Promise<void> {
    const credential = call.credential!;
    const ids = { orgId: credential.organizationId, credentialId: credential.id };
    if (call.rejectedVersion !== undefined) {
      // The token was refreshed (or renewed by a sibling) and Epic still refuses it.
      this.logger.warn(ids, 'Epic API call failed with 401 after a refresh');
      this.observe(call, 'reauthentication_required');
      throw toFhirError(await this.refresher.invalidate(credential, 'access_token_rejected'));
    }
    this.logger.warn(ids, 'Epic API call failed with 401, attempting refresh');
    call.rejectedVersion = credential.version;
  }

  /**
   * A call that got no usable answer: the wait before the next attempt (`delayMs`, when the rule
   * allows one), or, when the call ends here, the error it ends with (unavailable; `network` when
   * there was no answer at all), already recorded on the connection (lastError, events, metric).
   * A 429 is told to `rule.onThrottled` at once, whether or not a retry follows.
   */
  async failed(
    call: FhirCall,
    failure: CallFailure,
    rule: RetryRule,
  ): Promise<{ delayMs: number } | { error: FhirClientError }> {
    const credential = call.credential!;
    const orgId = credential.organizationId;
    const { status, code } = failure;
    const retryAfterMs = parseRetryAfter(failure.retryAfter, Date.now());
    if (status === 429) rule.onThrottled?.(retryAfterMs === undefined ? null : retryAfterMs / 1000);
    const delay = rule.retryable
      ? retryDelay(
          call.retries,
          { attempts: this.config.env.FHIR_RETRY_ATTEMPTS, maxWaitMs: rule.maxWaitMs },
          retryAfterMs,
        )
      : undefined;
    if (delay !== undefined) {
      call.retries += 1;
      this.logger.warn(
        { orgId, status: status ?? null, failure: code ?? null, retry: call.retries, delayMs: delay },
        `Epic API call failed (${status ?? code ?? 'network error'}), retrying in ${delay} ms`,
      );
      return { delayMs: delay };
    }
    this.observe(call, 'unavailable');
    const message = transientMessage(status, code, call.retries + 1);
    await this.recordTransient(credential, status ? `http_${status}` : (code ?? 'network'), message);
    return {
      error: new FhirClientError(FhirErrorKind.Unavailable, message, {
        organizationId: orgId,
        status,
        retryAfterSeconds: retryAfterMs !== undefined ? Math.ceil(retryAfterMs / 1000) : undefined,
        network: status === undefined ? (isTimeout(code) ? 'timeout' : 'unreachable') : undefined,
        cause: failure.error === undefined ? undefined : plainCause(failure.error, status),
      }),
    };
  }

  /**
   * The server answered (a success, or a FHIR error other than 401 and the transient ones): the
   * connection works. Records the metric and lastSync, and clears a lastError.
   */
  async answered(call: FhirCall, outcome: 'success' | 'fhir_error'): Promise<void> {
    this.observe(call, outcome);
    await this.recordSuccess(call.credential!);
  }

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
      // A refresh that fails transiently while the current token is still valid is not fatal: the
      // request goes ahead with the current token.
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

  private observe(call: FhirCall, outcome: FhirCallOutcome): void {
    if (call.startedAt !== undefined) {
      this.metrics.fhirCall(outcome, (performance.now() - call.startedAt) / 1000);
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
          this.connections.announce(ConnectionEvents.Restored, credential);
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
    this.connections.announce(ConnectionEvents.Degraded, credential, code, message);
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

function transientMessage(status: number | undefined, code: string | undefined, attempts: number): string {
  const tries = attempts > 1 ? ` (${attempts} attempts)` : '';
  if (status === 429) {
    return `Epic's FHIR API is rate limiting this client (HTTP 429)${tries}. Try again later.`;
  }
  if (status !== undefined) return `Epic's FHIR API answered HTTP ${status}${tries}. Try again later.`;
  if (isTimeout(code)) {
    return `Epic's FHIR API did not answer in time${tries}. Try again later.`;
  }
  if (code !== undefined && !isTransientFailure(undefined, code)) {
    // Not the network's (a TLS handshake refused, an address the outbound policy refuses): waiting
    // will not help, the FHIR base or its server's certificate has to change.
    return `Epic's FHIR API could not be reached (${code}): check the FHIR base URL and its server's certificate.`;
  }
  const why = [code, attempts > 1 ? `${attempts} attempts` : undefined].filter(Boolean).join(', ');
  return `Epic's FHIR API could not be reached${why ? ` (${why})` : ''}. Try again later.`;
}

const isTimeout = (code: string | undefined): boolean =>
  code === 'ECONNABORTED' || code === 'ETIMEDOUT' || code === 'ERR_SOCKET_CONNECTION_TIMEOUT';

/**
 * An error as a plain Error: its name, message, code and the answer's status, nothing else (an axios
 * error carries the request's config, with its Authorization header), for a FhirClientError's cause.
 */
function plainCause(error: unknown, status: number | undefined): Error {
  // Read field by field: an error from another realm (a VM context, a worker) is no `instanceof Error`.
  const source = (typeof error === 'object' && error !== null ? error : { message: String(error) }) as {
    name?: unknown;
    message?: unknown;
    code?: unknown;
  };
  const plain = new Error(typeof source.message === 'string' ? source.message : '');
  if (typeof source.name === 'string') plain.name = source.name;
  Object.assign(plain, { code: typeof source.code === 'string' ? source.code : undefined, status });
  return plain;
}
