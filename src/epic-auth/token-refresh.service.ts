import { setTimeout as sleep } from 'node:timers/promises';

import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { AuditService } from 'src/audit/audit.service';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { ConnectionEvents } from 'src/connections/connections.events';
import { ConnectionsService, StoredCredential } from 'src/connections/connections.service';
import { sameFhirBase } from 'src/connections/connections.types';
import { CredentialChangedError, TokenStoreService } from 'src/connections/token-store.service';
import { MetricsService } from 'src/metrics/metrics.service';
import { OrganizationsService } from 'src/organizations/organizations.service';

import { EpicAuthError, EpicAuthErrorCode } from './epic-auth.errors';
import { EpicOAuthClient, OAuthClientService } from './oauth-client.service';
import {
  BACKEND_TOKEN_REJECTED,
  classifyRefreshFailure,
  describeClientCredentialsFailure,
  TERMINAL_MESSAGES,
  TerminalReason,
} from './token-errors';
import { refreshDueAt } from './refresh-margin';
import { parseTokenResponse } from './token-response';

/** The credential a caller holds, as it saw it. */
export interface CredentialRef {
  id: string;
  organizationId: string;
  userId: string | null;
  /** The version the caller read: a newer stored version means someone refreshed meanwhile. */
  version: number;
  /** Whether the caller saw a refresh token: without one, the credential is cleared without asking Epic. */
  refreshable?: boolean;
}

/** Why a refresh was asked for (audited). */
export type RefreshReason = 'expiring' | 'unauthorized' | 'scheduled';

export interface RefreshResult {
  version: number;
  expiresAt: Date;
  /** False when another request or instance had already refreshed and its token was used. */
  refreshed: boolean;
}

/** A claimed refresh lease: until it is released or expires, nobody else renews or clears the credential. */
interface Lease {
  credentialId: string;
  id: string;
  released: boolean;
}

type LeasedOutcome =
  | { kind: 'refreshed'; credential: StoredCredential }
  /** Someone else stored tokens meanwhile: theirs are used. */
  | { kind: 'fresh'; version: number; expiresAt: Date }
  | { kind: 'gone' }
  | { kind: 'terminal'; reason: TerminalReason; code: string; message: string }
  | { kind: 'transient'; code: string; message: string; cause: unknown }
  /** Another caller held the lease for longer than we wait: nothing was asked or changed. */
  | { kind: 'busy' };

/** What leased work returns: an outcome, or `lost` when its lease expired and was claimed by another. */
type LeasedWork = (current: StoredCredential, lease: Lease) => Promise<LeasedOutcome | 'lost'>;

/** A lease outlives the token call (bounded by EPIC_HTTP_TIMEOUT_MS) by this much: the write-back. */
const LEASE_MARGIN_MS = 5_000;
/** Polling for a lease held elsewhere: the first pause, doubled up to the last. */
const FIRST_PAUSE_MS = 20;
const MAX_PAUSE_MS = 250;

/**
 * Refreshes stored Epic tokens, exactly one refresh at a time per credential, without holding a
 * database connection while Epic is called. Callers in this process share one promise; across
 * instances, a refresh lease on the credential row (`refresh_lease_id`, `refresh_lease_until`, by
 * the database clock) is claimed with one short UPDATE on the version just read; the connection
 * goes back to the pool; the token endpoint is called (bounded by EPIC_HTTP_TIMEOUT_MS, shorter
 * than the lease); and the answer is written back in a short transaction with compare-and-set on
 * `version`, clearing the lease. A caller that finds the lease taken polls until the version
 * changes (and uses that token) or the lease is released or expires (a crashed holder's does).
 * A refresh token is therefore never spent twice, which matters with rolling refresh tokens
 * (RFC 6749 §6 and §10.4; Epic's rolling refresh tokens: https://fhir.epic.com/Documentation?docId=oauth2).
 *
 * Failures are classified: terminal ones clear the dead tokens and say who must sign in again;
 * transient ones keep the tokens, record lastError and start a short cooldown.
 */
@Injectable()
export class TokenRefreshService {
  private readonly logger = new Logger(TokenRefreshService.name);
  private readonly inFlight = new Map<string, Promise<RefreshResult>>();
  private readonly cooldowns = new Map<string, { until: number; error: EpicAuthError }>();
  /** The token call is bounded by openid-client's timeout, in whole seconds. */
  private readonly leaseMs: number;
  /** How long a caller waits for a lease held elsewhere: a crashed holder's expires well before. */
  private readonly waitMs: number;

  constructor(
    private readonly tokens: TokenStoreService,
    private readonly connections: ConnectionsService,
    private readonly oauthClient: OAuthClientService,
    private readonly organizations: OrganizationsService,
    private readonly audit: AuditService,
    private readonly dataSource: DataSource,
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    const timeoutMs = config.env.EPIC_HTTP_TIMEOUT_MS;
    // Up to two token calls run under a lease (a Basic-encoding retry after invalid_client).
    this.leaseMs = 2 * Math.ceil(timeoutMs / 1000) * 1000 + LEASE_MARGIN_MS;
    this.waitMs = this.leaseMs + 1_000; // outlives a crashed holder's lease
  }

  /** True while refreshes of this credential pause after a transient failure (this process). */
  inCooldown(credentialId: string): boolean {
    return (this.cooldowns.get(credentialId)?.until ?? 0) > Date.now();
  }

  /**
   * True when a token expiring at `expiresAt` should be refreshed now: TOKEN_REFRESH_MARGIN_SECONDS
   * before it ends, or halfway through its life when that is later (`issuedAt`, refresh-margin.ts).
   */
  isDue(expiresAt: Date, now = new Date(), issuedAt: Date | null = null): boolean {
    const due = refreshDueAt(expiresAt, issuedAt, this.config.env.TOKEN_REFRESH_MARGIN_SECONDS);
    return now.getTime() >= due.getTime();
  }

  /**
   * Makes sure the credential has a token newer than `credential.version` that is not due, calling
   * Epic only if nobody else did. Rejects with an EpicAuthError: ReauthenticationRequired (tokens
   * cleared), EpicUnavailable (tokens kept; also during the cooldown after such a failure), or
   * NotConnected (the credential was deleted or replaced meanwhile).
   */
  refresh(credential: CredentialRef, reason: RefreshReason, now = new Date()): Promise<RefreshResult> {
    const running = this.inFlight.get(credential.id);
    if (running) return running;
    const cooldown = this.cooldowns.get(credential.id);
    if (cooldown && cooldown.until > Date.now()) return Promise.reject(cooldown.error);
    const job = this.run(credential, reason, now).finally(() => this.inFlight.delete(credential.id));
    this.inFlight.set(credential.id, job);
    return job;
  }

  /**
   * Clears a credential that is dead without asking Epic: expired with no refresh token, or its
   * access token rejected even after a refresh. Returns the error to throw to the caller. Waits
   * for a refresh in flight elsewhere (its lease): its new token may be the answer.
   */
  async invalidate(credential: CredentialRef, reason: TerminalReason): Promise<EpicAuthError> {
    const outcome = await this.underLease(
      credential,
      (current) => current.version !== credential.version,
      (current, lease) => {
        const message =
          current.grantType === 'client_credentials' ? BACKEND_TOKEN_REJECTED : TERMINAL_MESSAGES[reason];
        return this.terminate(current, lease, reason, reason, message);
      },
    );
    switch (outcome.kind) {
      case 'terminal':
        return this.afterTerminal(credential, outcome.code, outcome.message);
      // Ended meanwhile (another instance saw Epic refuse it): the reason it recorded stays.
      case 'gone':
      case 'transient':
        return notConnected(credential.organizationId);
      case 'busy':
        return busy(credential.organizationId);
      case 'fresh':
      case 'refreshed':
        // Someone stored new tokens meanwhile: the caller may retry with them.
        return new EpicAuthError(
          EpicAuthErrorCode.EpicUnavailable,
          'The Epic tokens changed meanwhile; try again.',
          { organizationId: credential.organizationId },
        );
    }
  }

  private async run(credential: CredentialRef, reason: RefreshReason, now: Date): Promise<RefreshResult> {
    const orgId = credential.organizationId;
    if (credential.refreshable === false) {
      // Nothing to ask Epic (and no discovery to wait for): the token is dead once it ends.
      this.metrics.refreshAttempt('terminal');
      throw await this.invalidate(credential, 'no_refresh_token');
    }
    let client: EpicOAuthClient;
    try {
      // The registration, the secret or signing key, and discovery: read before the lease is taken.
      client = await this.oauthClient.forOrganization(orgId);
    } catch (error) {
      if (error instanceof EpicAuthError && error.code === EpicAuthErrorCode.NotConfigured) {
        throw notConnected(orgId);
      }
      this.metrics.refreshAttempt('transient');
      // The tokens are kept: an administrator typing the secret again (or the server returning) fixes it.
      const code =
        error instanceof EpicAuthError && error.code === EpicAuthErrorCode.ClientSecretRefused
          ? 'client_secret_refused'
          : 'discovery';
      throw await this.afterTransient(credential, code, (error as Error).message, error);
    }

    // `now` as time passes while waiting for a lease held elsewhere.
    const started = Date.now();
    const later = () => new Date(now.getTime() + Date.now() - started);
    const outcome = await this.underLease(
      credential,
      // A sibling's newer token is used unless it is itself due (then it is renewed in turn).
      (current) =>
        current.version !== credential.version && !this.isDue(current.expiresAt, later(), current.issuedAt),
      (current, lease) => this.refreshLeased(current, lease, client, reason, now),
    );

    if (outcome.kind !== 'gone') {
      this.metrics.refreshAttempt(
        outcome.kind === 'fresh' ? 'reused' : outcome.kind === 'busy' ? 'transient' : outcome.kind,
      );
    }
    switch (outcome.kind) {
      case 'refreshed':
        this.cooldowns.delete(credential.id);
        this.emit(ConnectionEvents.TokenRefreshed, credential);
        return {
          version: outcome.credential.version,
          expiresAt: outcome.credential.expiresAt,
          refreshed: true,
        };
      case 'fresh':
        return { version: outcome.version, expiresAt: outcome.expiresAt, refreshed: false };
      case 'gone':
        throw notConnected(orgId);
      case 'busy':
        // Not this caller's failure to record: the lease holder records its own.
        throw busy(orgId);
      case 'terminal':
        throw this.afterTerminal(credential, outcome.code, outcome.message);
      case 'transient':
        throw await this.afterTransient(credential, outcome.code, outcome.message, outcome.cause);
    }
  }

  /**
   * Runs `work` under the credential's refresh lease. Each round reads the credential (one query,
   * no transaction): gone or ended → `gone`; `settled` (someone else's newer token will do) →
   * `fresh`; otherwise claims the lease on the version read. A lease held elsewhere is waited for,
   * polling with a growing pause, for at most `waitMs` (then `busy`). No connection is held between
   * these queries, nor while `work` calls Epic.
   */
  private async underLease(
    credential: CredentialRef,
    settled: (current: StoredCredential) => boolean,
    work: LeasedWork,
  ): Promise<LeasedOutcome> {
    const deadline = Date.now() + this.waitMs;
    let pause = FIRST_PAUSE_MS;
    for (;;) {
      const current = await this.tokens.findById(credential.id);
      if (!current || current.endedAt) return { kind: 'gone' };
      if (settled(current)) return { kind: 'fresh', version: current.version, expiresAt: current.expiresAt };
      const lease = await this.claimLease(current);
      if (lease) {
        const outcome = await this.withLease(current, lease, work);
        if (outcome !== 'lost') return outcome;
      }
      // Held elsewhere, or changed since we read it: look again shortly.
      if (Date.now() >= deadline) return { kind: 'busy' };
      await sleep(pause);
      pause = Math.min(pause * 2, MAX_PAUSE_MS);
    }
  }

  /** One statement: the lease, if nobody holds a live one and the row is still at the version read. */
  private async claimLease(current: StoredCredential): Promise<Lease | null> {
    const id = await this.tokens.claimRefreshLease(current, this.leaseMs);
    return id ? { credentialId: current.id, id, released: false } : null;
  }

  /** Runs leased work; a lease it did not release (an unexpected error) is released after it. */
  private async withLease(
    current: StoredCredential,
    lease: Lease,
    work: LeasedWork,
  ): Promise<LeasedOutcome | 'lost'> {
    try {
      return await work(current, lease);
    } finally {
      if (!lease.released) {
        await this.releaseLease(lease).catch((error: unknown) =>
          // It expires by itself after leaseMs.
          this.logger.warn(
            { err: error, credentialId: lease.credentialId },
            'Could not release a refresh lease',
          ),
        );
      }
    }
  }

  /**
   * Clears the lease if it is still ours (in `manager`'s transaction when given, which then holds
   * the row until it commits). False when it expired and another caller claimed it meanwhile, or
   * the row is gone.
   */
  private async releaseLease(lease: Lease, manager?: EntityManager): Promise<boolean> {
    lease.released = true;
    return this.tokens.releaseRefreshLease(lease.credentialId, lease.id, manager);
  }

  /**
   * A short transaction that releases the lease with its writes: if it rolls back, so did the
   * release, and withLease() releases it after.
   */
  private async inLeaseTransaction<T>(
    lease: Lease,
    work: (manager: EntityManager) => Promise<T>,
  ): Promise<T> {
    try {
      return await this.dataSource.transaction(work);
    } catch (error) {
      lease.released = false;
      throw error;
    }
  }

  /** Holding the lease, no connection: refresh (or renew a backend token) and store the answer. */
  private async refreshLeased(
    current: StoredCredential,
    lease: Lease,
    client: EpicOAuthClient,
    reason: RefreshReason,
    now: Date,
  ): Promise<LeasedOutcome | 'lost'> {
    const orgId = current.organizationId;
    // Tokens go back only to the server that issued them: a registration that now names another
    // FHIR server (a user's credential outlives it) ends them without a request anywhere.
    if (!sameFhirBase(current.fhirBaseUrl, client.registration.fhirBaseUrl)) {
      return this.terminate(
        current,
        lease,
        'registration_changed',
        'registration_changed',
        TERMINAL_MESSAGES.registration_changed,
        client.registration.organizationName,
      );
    }
    if (current.grantType === 'client_credentials') {
      return this.renewBackend(current, lease, client, reason, now);
    }
    if (!current.refreshable) {
      return this.terminate(
        current,
        lease,
        'no_refresh_token',
        'no_refresh_token',
        TERMINAL_MESSAGES.no_refresh_token,
        client.registration.organizationName,
      );
    }
    let refreshToken: string;
    try {
      refreshToken = await this.tokens.revealRefreshToken(current);
    } catch (error) {
      // Replaced or ended meanwhile by a writer outside the lease: its outcome stands.
      if (error instanceof CredentialChangedError) {
        await this.releaseLease(lease);
        return this.afterLostRace(current);
      }
      // Its key was removed from ENCRYPTION_KEYS (or the row was altered): nobody can use it again.
      this.logger.error(
        { orgId, credentialId: current.id, err: error },
        'A stored refresh token cannot be decrypted',
      );
      return this.terminate(
        current,
        lease,
        'undecryptable',
        'undecryptable',
        TERMINAL_MESSAGES.undecryptable,
        client.registration.organizationName,
      );
    }

    this.logger.log(
      { orgId, credentialId: current.id, reason },
      `Requested new access token for organization ${orgId}`,
    );
    let response: Awaited<ReturnType<OAuthClientService['refresh']>>;
    try {
      response = await this.oauthClient.refresh(client, refreshToken);
    } catch (error) {
      const failure = classifyRefreshFailure(error);
      this.logger.warn(
        { orgId, credentialId: current.id, failure: failure.code, err: error },
        `Refresh failed for organization ${orgId}: ${failure.code}`,
      );
      if (failure.kind === 'transient') {
        await this.releaseLease(lease);
        return { ...failure, cause: error };
      }
      // A sibling that does not take the lease (an older release, say) may have rotated the refresh
      // token: terminate() writes with compare-and-set, and uses its tokens if it did.
      return this.terminate(
        current,
        lease,
        failure.reason,
        failure.code,
        failure.message,
        client.registration.organizationName,
      );
    }

    return this.storeRenewed(current, lease, response, reason, now, client.registration.organizationName);
  }

  /**
   * Holding the lease, for a backend-service connection: a new client_credentials grant replaces
   * the token (SMART Backend Services issue no refresh token: https://hl7.org/fhir/smart-app-launch/backend-services.html). A failure never clears the token it still has:
   * there is no grant to lose, and the next attempt may succeed once the cause is fixed at Epic.
   */
  private async renewBackend(
    current: StoredCredential,
    lease: Lease,
    client: EpicOAuthClient,
    reason: RefreshReason,
    now: Date,
  ): Promise<LeasedOutcome | 'lost'> {
    const orgId = current.organizationId;
    this.logger.log(
      { orgId, credentialId: current.id, reason },
      `Requested new backend-service access token for organization ${orgId}`,
    );
    let response: Awaited<ReturnType<OAuthClientService['clientCredentials']>>;
    try {
      response = await this.oauthClient.clientCredentials(client);
    } catch (error) {
      const failure = describeClientCredentialsFailure(error);
      this.logger.warn(
        { orgId, credentialId: current.id, failure: failure.code, err: error },
        `Backend-service token request failed for organization ${orgId}: ${failure.code}`,
      );
      await this.releaseLease(lease);
      return { kind: 'transient', ...failure, cause: error };
    }
    return this.storeRenewed(
      current,
      lease,
      { ...response, refresh_token: undefined },
      reason,
      now,
      client.registration.organizationName,
    );
  }

  /**
   * Stores what the token endpoint answered, in one short transaction: compare-and-set on the
   * version the lease was claimed on, the lease cleared, the organization's state and the audit
   * event. The tokens are stored even if the lease expired meanwhile (as long as nobody stored
   * newer ones): Epic has issued them, and with a rolling refresh token the one we spent is dead.
   */
  private async storeRenewed(
    current: StoredCredential,
    lease: Lease,
    response: Record<string, unknown>,
    reason: RefreshReason,
    now: Date,
    organizationName: string,
  ): Promise<LeasedOutcome> {
    const orgId = current.organizationId;
    let parsed;
    try {
      parsed = parseTokenResponse(response, now);
    } catch (error) {
      await this.releaseLease(lease);
      return {
        kind: 'transient',
        code: 'malformed_response',
        message: "Epic's token endpoint answered without an access token. Try again later.",
        cause: error,
      };
    }
    const organization = { id: orgId, name: organizationName };
    const updated = await this.inLeaseTransaction(lease, async (manager) => {
      if (!(await this.releaseLease(lease, manager))) {
        this.logger.warn(
          { orgId, credentialId: current.id },
          'A refresh outlived its lease; its tokens are stored unless newer ones were',
        );
      }
      const stored = await this.connections.refreshed(manager, current, parsed);
      if (!stored) return null;
      await this.audit.record(
        {
          actor: null,
          organization,
          action: 'epic.refresh',
          detail: {
            reason,
            credential: current.id,
            rotated: parsed.refreshToken !== null,
            expiresAt: stored.expiresAt,
          },
        },
        manager,
      );
      return stored;
    });
    if (!updated) return this.afterLostRace(current);
    this.logger.log(
      { orgId, credentialId: current.id, expiresAt: updated.expiresAt },
      `Refreshed the Epic access token for organization ${orgId}`,
    );
    return { kind: 'refreshed', credential: updated };
  }

  /**
   * Holding the lease: deletes dead tokens (compare-and-set), records why, audits, in one short
   * transaction. If the lease expired and another caller claimed it, that caller decides: `lost`.
   */
  private async terminate(
    current: StoredCredential,
    lease: Lease,
    reason: TerminalReason,
    code: string,
    message: string,
    /** Known when the caller prepared the organization's client; else read here. */
    organizationName?: string,
  ): Promise<LeasedOutcome | 'lost'> {
    // Read before the transaction: the embedded database has a single connection.
    const organization =
      organizationName === undefined
        ? await this.organizationRef(current.organizationId)
        : { id: current.organizationId, name: organizationName };
    const outcome = await this.inLeaseTransaction(lease, async (manager) => {
      if (!(await this.releaseLease(lease, manager))) {
        const again = await this.tokens.findById(current.id, manager);
        if (again && !again.endedAt && again.version === current.version) return 'lost' as const;
        return 'changed' as const;
      }
      // A user's credential is kept, ended, so their page can say why; an organization's tokens
      // are deleted and its connection keeps the reason (ConnectionsService.ended).
      if (!(await this.connections.ended(manager, current, message))) return 'changed' as const;
      await this.audit.record(
        {
          actor: null,
          organization,
          action: 'epic.refresh',
          outcome: 'failure',
          detail: { failure: code, reason, credential: current.id, tokensCleared: true },
        },
        manager,
      );
      return 'cleared' as const;
    });
    if (outcome === 'lost') return 'lost';
    if (outcome === 'changed') return this.afterLostRace(current);
    return { kind: 'terminal', reason, code, message };
  }

  /**
   * A compare-and-set found the row changed: someone stored newer tokens (their tokens are used),
   * or the credential was deleted, ended or replaced (a reconnect is a new row).
   */
  private async afterLostRace(current: StoredCredential): Promise<LeasedOutcome> {
    const again = await this.tokens.findById(current.id);
    if (!again || again.endedAt || again.version === current.version) return { kind: 'gone' };
    return { kind: 'fresh', version: again.version, expiresAt: again.expiresAt };
  }

  private afterTerminal(credential: CredentialRef, code: string, message: string): EpicAuthError {
    this.cooldowns.delete(credential.id);
    this.logger.warn(
      { orgId: credential.organizationId, credentialId: credential.id, failure: code },
      `Epic connection of organization ${credential.organizationId} needs re-authentication: ${code}`,
    );
    this.emit(ConnectionEvents.Lost, credential, code, message);
    return new EpicAuthError(EpicAuthErrorCode.ReauthenticationRequired, message, {
      organizationId: credential.organizationId,
    });
  }

  /** Keeps the tokens; records lastError (not isConnected) and pauses refreshes for the cooldown. */
  private async afterTransient(
    credential: CredentialRef,
    code: string,
    message: string,
    cause: unknown,
  ): Promise<EpicAuthError> {
    const error = new EpicAuthError(EpicAuthErrorCode.EpicUnavailable, message, {
      cause,
      organizationId: credential.organizationId,
    });
    const cooldownMs = this.config.env.REFRESH_COOLDOWN_SECONDS * 1000;
    if (cooldownMs > 0) this.cooldowns.set(credential.id, { until: Date.now() + cooldownMs, error });
    try {
      await this.connections.failed(credential, message);
      await this.audit.record({
        actor: null,
        organization: await this.organizationRef(credential.organizationId),
        action: 'epic.refresh',
        outcome: 'failure',
        detail: { failure: code, credential: credential.id, tokensKept: true },
      });
    } catch (recordError) {
      this.logger.error(
        { err: recordError, orgId: credential.organizationId },
        'Could not record a refresh failure',
      );
    }
    this.emit(ConnectionEvents.Degraded, credential, code, message);
    return error;
  }

  /** The organization as the audit trail names it (its id if it was deleted meanwhile). */
  private async organizationRef(id: string): Promise<{ id: string; name: string }> {
    return this.organizations.get(id).then(
      (org) => ({ id, name: org.name }),
      () => ({ id, name: id }),
    );
  }

  private emit(event: ConnectionEvents, credential: CredentialRef, code?: string, message?: string): void {
    this.connections.announce(event, credential, code, message);
  }
}

function notConnected(organizationId: string): EpicAuthError {
  return new EpicAuthError(
    EpicAuthErrorCode.NotConnected,
    'This Epic connection was disconnected or replaced. Connect to Epic again if it is needed.',
    { organizationId },
  );
}

function busy(organizationId: string): EpicAuthError {
  return new EpicAuthError(
    EpicAuthErrorCode.EpicUnavailable,
    'Another refresh of this Epic connection is taking too long. Try again shortly.',
    { organizationId },
  );
}
