import { Injectable, Logger } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, In, Repository } from 'typeorm';

import { isForeignKeyViolation } from 'src/database/pg-errors';

import { ConnectionEvent, ConnectionEvents, SESSION_FINISHED_CODE } from './connections.events';
import {
  ConnectionRef,
  ConnectionState,
  CredentialGrantType,
  OrganizationConnectionState,
  StoredCredential,
  TokensToStore,
} from './connections.types';
import { OrganizationConnection } from './entities/organization-connection.entity';
import { TokenStoreService } from './token-store.service';

// The state vocabulary is part of this module's public face.
export {
  ATTENTION_STATES,
  CONNECTION_STATES,
  ConnectionState,
  type ConnectionFacts,
  type ConnectionRef,
  type OrganizationConnectionState,
  type StoredCredential,
} from './connections.types';

/** What a write of an organization's connection row changes (absent: kept). */
interface OrganizationStateChange {
  isConnected?: boolean;
  tokenExpiry?: Date | null;
  lastSync?: Date;
  /** A message sets the error (and, the first time, since when); null clears both. */
  lastError?: string | null;
}

/**
 * The owner of Epic connections, organization-level and user-level alike. Other modules record
 * outcomes here (connected, refreshed, synced, failed transiently, ended, disconnected) and read
 * the connection through ConnectionsReadModel; nothing else writes `organization_connection` or
 * `epic_credential`. An organization's state is its `organization_connection` row; a user's is
 * on their credential. Outcomes that take a manager write in the caller's transaction; `announce`
 * tells listeners once it has committed.
 */
@Injectable()
export class ConnectionsService {
  private readonly logger = new Logger(ConnectionsService.name);

  constructor(
    @InjectRepository(OrganizationConnection) private readonly states: Repository<OrganizationConnection>,
    private readonly tokens: TokenStoreService,
    private readonly events: EventEmitter2,
  ) {}

  /** Stores an organization's new tokens (replacing its credential) and marks it connected. */
  async connectOrganization(
    manager: EntityManager,
    input: {
      organizationId: string;
      fhirBaseUrl: string;
      tokens: TokensToStore;
      fhirUser: string | null;
      grantType: CredentialGrantType;
    },
  ): Promise<StoredCredential> {
    const credential = await this.tokens.replaceOrganizationCredential(manager, input);
    await this.writeOrganization(
      input.organizationId,
      { isConnected: true, tokenExpiry: input.tokens.expiresAt, lastError: null },
      manager,
    );
    return credential;
  }

  /** Stores a user's new tokens from a launch (replacing theirs for this purpose). */
  connectUser(
    manager: EntityManager,
    input: Parameters<TokenStoreService['replaceUserCredential']>[1],
  ): Promise<StoredCredential> {
    return this.tokens.replaceUserCredential(manager, input);
  }

  /**
   * Stores refreshed tokens (compare-and-set on the version read) and marks the connection
   * healthy. Null when the credential changed or went meanwhile.
   */
  async refreshed(
    manager: EntityManager,
    current: StoredCredential,
    tokens: TokensToStore,
  ): Promise<StoredCredential | null> {
    const stored = await this.tokens.rotate(manager, current, tokens);
    if (stored && current.userId === null) {
      await this.writeOrganization(
        current.organizationId,
        { isConnected: true, tokenExpiry: stored.expiresAt, lastError: null },
        manager,
      );
    }
    return stored;
  }

  /**
   * The server refused the grant for good: an organization's tokens are deleted (it keeps the
   * reason and when the tokens ended: "expired", not "never connected"); a user's credential is
   * kept, ended, so their page can say why. Compare-and-set; false when it changed meanwhile.
   */
  async ended(manager: EntityManager, current: StoredCredential, reason: string): Promise<boolean> {
    if (current.userId !== null) return this.tokens.endUserCredential(manager, current, reason);
    if (!(await this.tokens.deleteCredential(manager, current))) return false;
    await this.writeOrganization(current.organizationId, { isConnected: false, lastError: reason }, manager);
    return true;
  }

  /**
   * Ends users' credentials that ran out without a refresh being refused (no refresh token and the
   * access token expired, or the refresh token's announced end passed): each is kept, ended, as
   * `ended` does, if it is still live and still ran out at `now` (a refresh or a reconnect
   * meanwhile wins). One transaction; `connection.lost` is announced for each after it commits:
   * with code `expired` and `reasons.ranOut` for a renewable one (a lost connection), with code
   * `session_finished` (SESSION_FINISHED_CODE) and `reasons.finished` for one that could never be
   * renewed (a finished session, which nobody is told about). Returns how many ended.
   */
  async endRanOutUserConnections(
    ids: string[],
    now: Date,
    reasons: { ranOut: string; finished: string },
  ): Promise<number> {
    if (ids.length === 0) return 0;
    const ended = await this.states.manager.transaction((manager) =>
      this.tokens.endRanOutUserCredentials(manager, ids, now, reasons),
    );
    for (const credential of ended) {
      if (credential.finished) {
        this.announce(ConnectionEvents.Lost, credential, SESSION_FINISHED_CODE, reasons.finished);
      } else {
        this.announce(ConnectionEvents.Lost, credential, 'expired', reasons.ranOut);
      }
    }
    return ended.length;
  }

  /** A call or refresh failed transiently: the tokens are kept, the failure recorded. */
  async failed(connection: ConnectionRef, message: string): Promise<void> {
    if (connection.userId === null) {
      await this.writeOrganization(connection.organizationId, { lastError: message });
    } else {
      await this.tokens.recordUserState(connection.id, { lastError: message });
    }
  }

  /** A call succeeded at `at`; `recovered` clears a recorded failure. */
  async synced(connection: ConnectionRef, at: Date, recovered: boolean): Promise<void> {
    const change = recovered ? { lastSync: at, lastError: null } : { lastSync: at };
    if (connection.userId === null) await this.writeOrganization(connection.organizationId, change);
    else await this.tokens.recordUserState(connection.id, change);
  }

  /**
   * Forgets the organization's own connection on purpose (disconnect, re-authentication, a changed
   * registration): its tokens are deleted and it reads "not connected". Returns the deleted
   * credential's id, or null when there was none.
   */
  async disconnectOrganization(organizationId: string, manager?: EntityManager): Promise<string | null> {
    const work = async (m: EntityManager): Promise<string | null> => {
      const credential = await this.tokens.findOrganizationCredential(organizationId, m);
      const deleted = await this.tokens.deleteOrganizationCredential(organizationId, m);
      await this.writeOrganization(organizationId, { isConnected: false, tokenExpiry: null }, m);
      return deleted && credential ? credential.id : null;
    };
    return manager ? work(manager) : this.states.manager.transaction(work);
  }

  /**
   * Ends every live user connection of the organization (their tokens were issued for a
   * registration that changed), inside the caller's transaction; each keeps the reason for its
   * user's page. Returns how many ended.
   */
  endUserConnections(manager: EntityManager, organizationId: string, reason: string): Promise<number> {
    return this.tokens.endUserCredentialsOf(manager, organizationId, reason);
  }

  /** The organizations' own connection rows (organizations never connected have none). */
  async organizationStates(organizationIds: string[]): Promise<Map<string, OrganizationConnectionState>> {
    if (organizationIds.length === 0) return new Map();
    const rows = await this.states.findBy({ organizationId: In(organizationIds) });
    return new Map(
      rows.map((r) => [
        r.organizationId,
        {
          organizationId: r.organizationId,
          isConnected: r.isConnected,
          tokenExpiry: r.tokenExpiry,
          lastSync: r.lastSync,
          lastError: r.lastError,
          lastErrorAt: r.lastErrorAt,
        },
      ]),
    );
  }

  /**
   * Inside the caller's transaction: locks the organization's connection row (creating it when
   * missing), so two evaluators cannot announce the same transition twice. False when the
   * organization no longer exists.
   */
  async lockForNotification(manager: EntityManager, organizationId: string): Promise<boolean> {
    try {
      await manager.query(
        `INSERT INTO organization_connection (organization_id) VALUES ($1) ON CONFLICT (organization_id) DO NOTHING`,
        [organizationId],
      );
    } catch (error) {
      if (isForeignKeyViolation(error)) return false; // the organization was deleted meanwhile
      throw error;
    }
    await manager.query('SELECT 1 FROM organization_connection WHERE organization_id = $1 FOR UPDATE', [
      organizationId,
    ]);
    return true;
  }

  /** Records the state the organization's admins were just told about (after lockForNotification). */
  async recordNotifiedState(
    manager: EntityManager,
    organizationId: string,
    state: ConnectionState,
    at: Date,
  ): Promise<void> {
    await manager.update(
      OrganizationConnection,
      { organizationId },
      { notifiedState: state, notifiedStateAt: at },
    );
  }

  /**
   * Tells listeners (ConnectionHealth, the audit trail) about a committed change. A failing
   * listener is logged and never reaches the caller.
   */
  announce(event: ConnectionEvents, connection: ConnectionRef, code?: string, message?: string): void {
    const payload: ConnectionEvent = {
      organizationId: connection.organizationId,
      credentialId: connection.id,
      userId: connection.userId,
      code,
      message,
      at: new Date(),
    };
    this.events.emitAsync(event, payload).catch((error: unknown) => {
      this.logger.error({ err: error, event }, `A listener of ${event} failed`);
    });
  }

  /** One upsert of the organization's connection row; lastErrorAt keeps the first failure's time. */
  private async writeOrganization(
    organizationId: string,
    change: OrganizationStateChange,
    manager?: EntityManager,
  ): Promise<void> {
    const columns: string[] = [];
    const values: unknown[] = [organizationId];
    const set = (column: string, value: unknown) => {
      values.push(value);
      columns.push(column);
    };
    if (change.isConnected !== undefined) set('is_connected', change.isConnected);
    if (change.tokenExpiry !== undefined) set('token_expiry', change.tokenExpiry);
    if (change.lastSync !== undefined) set('last_sync', change.lastSync);
    if (change.lastError !== undefined) set('last_error', change.lastError);
    if (columns.length === 0) return;
    const errorAt =
      change.lastError === undefined
        ? null
        : change.lastError === null
          ? { insert: 'NULL', update: 'NULL' }
          : { insert: 'now()', update: 'COALESCE(organization_connection.last_error_at, now())' };
    const insertColumns = ['organization_id', ...columns, ...(errorAt ? ['last_error_at'] : [])];
    const insertValues = ['$1', ...columns.map((_, i) => `$${i + 2}`), ...(errorAt ? [errorAt.insert] : [])];
    const updates = [
      ...columns.map((column) => `${column} = EXCLUDED.${column}`),
      ...(errorAt ? [`last_error_at = ${errorAt.update}`] : []),
      'updated_at = now()',
    ];
    try {
      await (manager ?? this.states.manager).query(
        `INSERT INTO organization_connection (${insertColumns.join(', ')}) VALUES (${insertValues.join(', ')})
         ON CONFLICT (organization_id) DO UPDATE SET ${updates.join(', ')}`,
        values,
      );
    } catch (error) {
      // The organization was deleted meanwhile (its connection with it): nothing left to record.
      if (!isForeignKeyViolation(error)) throw error;
    }
  }
}
