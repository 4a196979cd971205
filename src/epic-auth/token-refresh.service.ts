import { Inject, Injectable, Logger } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import * as oidc from 'openid-client';
import { EntityManager } from 'typeorm';

import { AuditService } from 'src/audit/audit.service';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { DatabaseEndpoint } from 'src/database/database-endpoint';
import { DbLockService } from 'src/database/db-lock.service';
import { MetricsService } from 'src/metrics/metrics.service';
import { OrganizationsService } from 'src/organizations/organizations.service';

import { EpicCredential } from './entities/epic-credential.entity';
import { EpicAuthError, EpicAuthErrorCode } from './epic-auth.errors';
import { ConnectionEvents, emitConnectionEvent } from './epic-auth.events';
import { EpicOAuthClient, OAuthClientService } from './oauth-client.service';
import {
  BACKEND_TOKEN_REJECTED,
  classifyRefreshFailure,
  describeClientCredentialsFailure,
  TERMINAL_MESSAGES,
  TerminalReason,
} from './token-errors';
import { parseTokenResponse } from './token-response';
import { TokenStoreService } from './token-store.service';

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

type LockedOutcome =
  | { kind: 'refreshed' | 'fresh'; credential: EpicCredential }
  | { kind: 'gone' }
  | { kind: 'terminal'; reason: TerminalReason; code: string; message: string }
  | { kind: 'transient'; code: string; message: string; cause: unknown };

/**
 * Refreshes stored Epic tokens, exactly one refresh at a time per credential: callers in this
 * process share one promise, and instances serialise on a PostgreSQL advisory lock held while the
 * token endpoint is called (bounded by EPIC_HTTP_TIMEOUT_MS). Whoever gets the lock re-reads the
 * credential first and uses a token a sibling just stored; new tokens are written with
 * compare-and-set on `version`. A refresh token is therefore never spent twice, which matters
 * with rolling refresh tokens (EPIC-SMART.md §5).
 *
 * Failures are classified: terminal ones clear the dead tokens and say who must sign in again;
 * transient ones keep the tokens, record lastError and start a short cooldown.
 */
@Injectable()
export class TokenRefreshService {
  private readonly logger = new Logger(TokenRefreshService.name);
  private readonly inFlight = new Map<string, Promise<RefreshResult>>();
  private readonly cooldowns = new Map<string, { until: number; error: EpicAuthError }>();
  private readonly slots: Semaphore;

  constructor(
    private readonly tokens: TokenStoreService,
    private readonly oauthClient: OAuthClientService,
    private readonly organizations: OrganizationsService,
    private readonly audit: AuditService,
    private readonly locks: DbLockService,
    private readonly events: EventEmitter2,
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    endpoint: DatabaseEndpoint,
  ) {
    this.slots = new Semaphore(Math.max(1, Math.floor(endpoint.poolSize / 2)));
  }

  /** True while refreshes of this credential pause after a transient failure (this process). */
  inCooldown(credentialId: string): boolean {
    return (this.cooldowns.get(credentialId)?.until ?? 0) > Date.now();
  }

  /** True when a token expiring at `expiresAt` should be refreshed now (TOKEN_REFRESH_MARGIN_SECONDS). */
  isDue(expiresAt: Date, now = new Date()): boolean {
    return now.getTime() >= expiresAt.getTime() - this.config.env.TOKEN_REFRESH_MARGIN_SECONDS * 1000;
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
   * access token rejected even after a refresh. Returns the error to throw to the caller.
   */
  async invalidate(credential: CredentialRef, reason: TerminalReason): Promise<EpicAuthError> {
    const outcome = await this.locks.withLock(lockKey(credential.id), async (manager) => {
      const current = await this.tokens.findById(credential.id, manager);
      // Ended meanwhile (another instance saw Epic refuse it): keep the reason it recorded.
      if (!current || current.endedAt) return { kind: 'gone' } as const;
      if (current.version !== credential.version) return { kind: 'fresh', credential: current } as const;
      const message =
        current.grantType === 'client_credentials' ? BACKEND_TOKEN_REJECTED : TERMINAL_MESSAGES[reason];
      return this.terminate(manager, current, reason, reason, message);
    });
    if (outcome.kind === 'terminal') return this.afterTerminal(credential, outcome.code, outcome.message);
    if (outcome.kind === 'gone' || outcome.kind === 'transient') {
      return notConnected(credential.organizationId);
    }
    // Someone stored new tokens meanwhile: the caller may retry with them.
    return new EpicAuthError(
      EpicAuthErrorCode.EpicUnavailable,
      'The Epic tokens changed meanwhile; try again.',
      {
        organizationId: credential.organizationId,
      },
    );
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
      // Database reads and discovery happen before the lock: the embedded database has one connection.
      client = await this.oauthClient.forOrganization(orgId);
    } catch (error) {
      if (error instanceof EpicAuthError && error.code === EpicAuthErrorCode.NotConfigured) {
        throw notConnected(orgId);
      }
      this.metrics.refreshAttempt('transient');
      throw await this.afterTransient(credential, 'discovery', (error as Error).message, error);
    }

    // A refresh holds a pooled connection (its lock's transaction) during the call to Epic: at most
    // half the pool does so at once, so sessions, health checks and other work always find one.
    const outcome = await this.slots.run(() =>
      this.locks.withLock(
        lockKey(credential.id),
        (manager) => this.refreshLocked(manager, credential, client, reason, now),
        { waitMs: this.config.env.EPIC_HTTP_TIMEOUT_MS * 2 + 5_000 },
      ),
    );

    if (outcome.kind !== 'gone') {
      this.metrics.refreshAttempt(outcome.kind === 'fresh' ? 'reused' : outcome.kind);
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
        return {
          version: outcome.credential.version,
          expiresAt: outcome.credential.expiresAt,
          refreshed: false,
        };
      case 'gone':
        throw notConnected(orgId);
      case 'terminal':
        throw this.afterTerminal(credential, outcome.code, outcome.message);
      case 'transient':
        throw await this.afterTransient(credential, outcome.code, outcome.message, outcome.cause);
    }
  }

  /** Under the credential's lock: re-read, then refresh only if nobody did. */
  private async refreshLocked(
    manager: EntityManager,
    credential: CredentialRef,
    client: EpicOAuthClient,
    reason: RefreshReason,
    now: Date,
  ): Promise<LockedOutcome> {
    const orgId = credential.organizationId;
    const current = await this.tokens.findById(credential.id, manager);
    if (!current || current.endedAt) return { kind: 'gone' };
    if (current.version !== credential.version && !this.isDue(current.expiresAt, now)) {
      return { kind: 'fresh', credential: current };
    }
    if (current.grantType === 'client_credentials') {
      return this.renewBackendLocked(manager, current, client, reason, now);
    }
    if (!current.refreshTokenEnc) {
      return this.terminate(
        manager,
        current,
        'no_refresh_token',
        'no_refresh_token',
        TERMINAL_MESSAGES.no_refresh_token,
      );
    }
    let refreshToken: string;
    try {
      refreshToken = this.tokens.revealRefreshToken(current);
    } catch (error) {
      // Its key was removed from ENCRYPTION_KEYS (or the row was altered): nobody can use it again.
      this.logger.error(
        { orgId, credentialId: current.id, err: error },
        'A stored refresh token cannot be decrypted',
      );
      return this.terminate(
        manager,
        current,
        'undecryptable',
        'undecryptable',
        TERMINAL_MESSAGES.undecryptable,
      );
    }

    this.logger.log(
      { orgId, credentialId: current.id, reason },
      `Requested new access token for organization ${orgId}`,
    );
    let response: Awaited<ReturnType<typeof oidc.refreshTokenGrant>>;
    try {
      response = await oidc.refreshTokenGrant(client.oauth, refreshToken);
    } catch (error) {
      const failure = classifyRefreshFailure(error);
      this.logger.warn(
        { orgId, credentialId: current.id, failure: failure.code, err: error },
        `Refresh failed for organization ${orgId}: ${failure.code}`,
      );
      if (failure.kind === 'transient') return { ...failure, cause: error };
      // A sibling that does not share our lock may have rotated the refresh token: use its tokens.
      const again = await this.tokens.findById(current.id, manager);
      // Replaced meanwhile (a reconnect does not take this lock): the new connection is not ours to mark.
      if (!again) return { kind: 'gone' };
      if (again.version !== current.version) return { kind: 'fresh', credential: again };
      return this.terminate(manager, current, failure.reason, failure.code, failure.message);
    }

    return this.storeRenewed(manager, current, response, reason, now);
  }

  /**
   * Under the lock, for a backend-service connection: a new client_credentials grant replaces the
   * token (there is no refresh token, §9). A failure never clears the token it still has: there is
   * no grant to lose, and the next attempt may succeed once the cause is fixed at Epic.
   */
  private async renewBackendLocked(
    manager: EntityManager,
    current: EpicCredential,
    client: EpicOAuthClient,
    reason: RefreshReason,
    now: Date,
  ): Promise<LockedOutcome> {
    const orgId = current.organizationId;
    this.logger.log(
      { orgId, credentialId: current.id, reason },
      `Requested new backend-service access token for organization ${orgId}`,
    );
    let response: Awaited<ReturnType<typeof oidc.clientCredentialsGrant>>;
    try {
      response = await this.oauthClient.clientCredentials(client);
    } catch (error) {
      const failure = describeClientCredentialsFailure(error);
      this.logger.warn(
        { orgId, credentialId: current.id, failure: failure.code, err: error },
        `Backend-service token request failed for organization ${orgId}: ${failure.code}`,
      );
      return { kind: 'transient', ...failure, cause: error };
    }
    return this.storeRenewed(manager, current, { ...response, refresh_token: undefined }, reason, now);
  }

  /** Under the lock: stores what the token endpoint answered (compare-and-set), records and audits it. */
  private async storeRenewed(
    manager: EntityManager,
    current: EpicCredential,
    response: Record<string, unknown>,
    reason: RefreshReason,
    now: Date,
  ): Promise<LockedOutcome> {
    const orgId = current.organizationId;
    let parsed;
    try {
      parsed = parseTokenResponse(response, now);
    } catch (error) {
      return {
        kind: 'transient',
        code: 'malformed_response',
        message: "Epic's token endpoint answered without an access token. Try again later.",
        cause: error,
      };
    }
    const updated = await this.tokens.rotate(manager, current, parsed);
    if (!updated) return { kind: 'gone' };
    if (current.userId === null) {
      await this.organizations.recordConnectionState(
        orgId,
        { isConnected: true, tokenExpiry: updated.expiresAt, lastError: null },
        manager,
      );
    }
    await this.audit.record(
      {
        actor: null,
        organization: await this.organizationRef(orgId, manager),
        action: 'epic.refresh',
        detail: {
          reason,
          credential: current.id,
          rotated: parsed.refreshToken !== null,
          expiresAt: updated.expiresAt,
        },
      },
      manager,
    );
    this.logger.log(
      { orgId, credentialId: current.id, expiresAt: updated.expiresAt },
      `Refreshed the Epic access token for organization ${orgId}`,
    );
    return { kind: 'refreshed', credential: updated };
  }

  /** Under the lock: deletes dead tokens, records why, audits. */
  private async terminate(
    manager: EntityManager,
    current: EpicCredential,
    reason: TerminalReason,
    code: string,
    message: string,
  ): Promise<LockedOutcome> {
    // A user's credential is kept, ended, so their page can say why; an organization's is deleted
    // (the organization keeps the reason in lastError).
    const cleared =
      current.userId === null
        ? await this.tokens.deleteCredential(manager, current)
        : await this.tokens.endUserCredential(manager, current, message);
    if (!cleared) return { kind: 'gone' };
    if (current.userId === null) {
      // tokenExpiry is kept: an "expired" connection differs from one that was never made.
      await this.organizations.recordConnectionState(
        current.organizationId,
        { isConnected: false, lastError: message },
        manager,
      );
    }
    await this.audit.record(
      {
        actor: null,
        organization: await this.organizationRef(current.organizationId, manager),
        action: 'epic.refresh',
        outcome: 'failure',
        detail: { failure: code, reason, credential: current.id, tokensCleared: true },
      },
      manager,
    );
    return { kind: 'terminal', reason, code, message };
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
      if (credential.userId === null) {
        await this.organizations.recordConnectionState(credential.organizationId, { lastError: message });
      } else {
        await this.tokens.recordUserConnectionState(credential.id, { lastError: message });
      }
      await this.audit.record({
        actor: null,
        organization: await this.organizations
          .get(credential.organizationId)
          .then(({ id, name }) => ({ id, name })),
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

  /** Inside a transaction: the embedded database's single connection is taken by it. */
  private async organizationRef(id: string, manager: EntityManager): Promise<{ id: string; name: string }> {
    const rows = await manager.query<{ name: string }[]>('SELECT name FROM organization WHERE id = $1', [id]);
    return { id, name: rows[0]?.name ?? id };
  }

  private emit(event: ConnectionEvents, credential: CredentialRef, code?: string, message?: string): void {
    emitConnectionEvent(this.events, this.logger, event, credential, code, message);
  }
}

const lockKey = (credentialId: string): string => `epic-credential-refresh:${credentialId}`;

function notConnected(organizationId: string): EpicAuthError {
  return new EpicAuthError(
    EpicAuthErrorCode.NotConnected,
    'This Epic connection was disconnected or replaced. Connect to Epic again if it is needed.',
    { organizationId },
  );
}

/** At most `size` tasks at once; the rest wait in order. */
class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly size: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active < this.size) this.active += 1;
    else await new Promise<void>((resolve) => this.waiting.push(resolve)); // a finishing task hands its slot over
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active -= 1;
    }
  }
}
