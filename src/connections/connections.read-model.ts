import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { ServerLabel, serverLabel, speakOfServer } from 'src/organizations/organization.types';

import { connectionEnd, connectionStateSql, deriveConnectionState } from './connection-state';
import { CONNECTION_STATES, ConnectionFacts, ConnectionState } from './connections.types';

export { deriveConnectionState } from './connection-state';
export { ATTENTION_STATES, CONNECTION_STATES, ConnectionState } from './connections.types';

/** One organization's connection as the health read model sees it. */
export interface ConnectionSnapshot {
  organizationId: string;
  organizationName: string;
  facts: ConnectionFacts;
  state: ConnectionState;
  /** When it stops working without someone signing in again; null if it refreshes indefinitely. */
  endsAt: Date | null;
  lastError: string | null;
  lastErrorAt: Date | null;
  lastSync: Date | null;
  /** The state its admins were last told about (null: never evaluated). */
  notifiedState: ConnectionState | null;
  /** The stored credential's granted scopes and patient context (empty / null without one). */
  scopes: string[];
  patientId: string | null;
  /** What messages call the organization's FHIR server (server-label.ts). */
  server: ServerLabel;
}

interface FactsRow {
  id: string;
  name: string;
  configured: boolean;
  last_error: string | null;
  last_error_at: Date | null;
  last_sync: Date | null;
  token_expiry: Date | null;
  notified_state: ConnectionState | null;
  credential_id: string | null;
  expires_at: Date | null;
  refreshable: boolean | null;
  refresh_expires_at: Date | null;
  scopes: string | null;
  patient_id: string | null;
  fhir_base_url: string | null;
  fhir_server_name: string | null;
}

/** One row of the organizations' connection list (root admin console). */
export interface ConnectionListItem {
  organizationId: string;
  name: string;
  slug: string;
  environment: string;
  /** The registered FHIR base URL and the name an administrator gave the server (server-label.ts). */
  fhirBaseUrl: string | null;
  fhirServerName: string | null;
  state: ConnectionState;
  /** When the access token ends (null: no stored token). */
  tokenExpiresAt: Date | null;
  /** When the connection stops working without a sign-in (null: refreshes indefinitely or no token). */
  endsAt: Date | null;
  refreshable: boolean;
  lastSync: Date | null;
  lastError: string | null;
  lastErrorAt: Date | null;
}

export type ConnectionListSort = 'name' | 'state' | 'expiry' | 'last_sync';

export interface ConnectionListQuery {
  /** One state, or `attention` for expiring, expired and error. */
  state?: ConnectionState | 'attention';
  /** Part of the name or slug, case-insensitive. */
  search?: string;
  sort?: ConnectionListSort;
  limit?: number;
  offset?: number;
}

const SORTS: Record<ConnectionListSort, string> = {
  name: 'lower(name), id',
  // Worst first: what needs attention at the top.
  state: `array_position(ARRAY['expired','error','expiring','not_connected','not_configured','connected'], state), lower(name), id`,
  expiry: 'ends_at NULLS LAST, token_expires_at NULLS LAST, lower(name), id',
  last_sync: 'last_sync DESC NULLS LAST, lower(name), id',
};

/**
 * The declared read model of this module (the one place its SQL reads another module's table):
 * each organization (`organization o`, the Organizations module's, read only) with its own
 * connection row `s` and credential `c`.
 */
const ORGANIZATIONS_WITH_CONNECTIONS = `organization o
  LEFT JOIN organization_connection s ON s.organization_id = o.id
  LEFT JOIN epic_credential c ON c.organization_id = o.id AND c.user_id IS NULL`;

/** The console's rows: each organization with its connection and its state ($1 now, $2 warn until). */
const LIST_SOURCE = `WITH l AS (
  SELECT o.id, o.name, o.slug, o.epic_environment, o.fhir_base_url, o.fhir_server_name,
         s.last_sync, s.last_error, s.last_error_at,
         c.expires_at AS token_expires_at, COALESCE(c.renewable, false) AS refreshable,
         CASE WHEN c.renewable THEN c.refresh_expires_at ELSE c.expires_at END AS ends_at,
         ${connectionStateSql('$1', '$2')} AS state
    FROM ${ORGANIZATIONS_WITH_CONNECTIONS})`;

/** The facts of an organization's connection, as the state model reads them. */
const FACTS_SELECT = `
  SELECT o.id, o.name, (o.epic_client_id IS NOT NULL AND o.fhir_base_url IS NOT NULL) AS configured,
         s.last_error, s.last_error_at, s.last_sync, s.token_expiry, s.notified_state,
         o.fhir_base_url, o.fhir_server_name,
         c.id AS credential_id, c.expires_at, c.renewable AS refreshable, c.refresh_expires_at,
         c.scopes, c.patient_id
    FROM ${ORGANIZATIONS_WITH_CONNECTIONS}`;

/** Organization credentials that need the scheduled check's look (CandidatePage). */
export interface ConnectionCandidate {
  id: string;
  organizationId: string;
  version: number;
  expiresAt: Date;
  refreshable: boolean;
}

/**
 * The state of organizations' Epic connections (connection-state.ts), read from the database:
 * one organization at a time, or counted, filtered and paged in SQL for thousands (consoles,
 * metrics, the scheduled check). The warning window is EXPIRY_WARNING_MINUTES. Messages stored
 * in English about Epic are said of each organization's own server when read (server-label.ts).
 */
@Injectable()
export class ConnectionsReadModel {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  get warningMs(): number {
    return this.config.env.EXPIRY_WARNING_MINUTES * 60_000;
  }

  /** Snapshots of the given organizations (unknown ids are left out). */
  async snapshots(
    organizationIds: string[],
    now = new Date(),
    manager?: EntityManager,
  ): Promise<ConnectionSnapshot[]> {
    if (organizationIds.length === 0) return [];
    const rows = await (manager ?? this.dataSource.manager).query<FactsRow[]>(
      `${FACTS_SELECT} WHERE o.id = ANY($1::uuid[])`,
      [organizationIds],
    );
    return rows.map((row) => this.toSnapshot(row, now));
  }

  async snapshot(organizationId: string, now = new Date()): Promise<ConnectionSnapshot | null> {
    return (await this.snapshots([organizationId], now))[0] ?? null;
  }

  /** How many organizations are in each state, counted in the database. */
  async counts(now = new Date()): Promise<Record<ConnectionState, number>> {
    const rows = await this.dataSource.query<{ state: ConnectionState; n: number }[]>(
      `SELECT ${connectionStateSql('$1', '$2')} AS state, count(*)::int AS n
         FROM ${ORGANIZATIONS_WITH_CONNECTIONS}
        GROUP BY 1`,
      [now, new Date(now.getTime() + this.warningMs)],
    );
    const counts = Object.fromEntries(CONNECTION_STATES.map((s) => [s, 0])) as Record<
      ConnectionState,
      number
    >;
    for (const row of rows) counts[row.state] = row.n;
    return counts;
  }

  /**
   * A page of organizations with their connection state, filtered, searched and sorted in the
   * database (the state is computed by connectionStateSql). The page query has no total, so its
   * LIMIT can stop early along the name index; the total comes from `counts` (counts() at the same
   * `now`) when there is no search, else from one counting query.
   */
  async list(
    query: ConnectionListQuery = {},
    now = new Date(),
    counts?: Record<ConnectionState, number>,
  ): Promise<{ items: ConnectionListItem[]; total: number }> {
    const states =
      query.state === 'attention' ? ['expiring', 'expired', 'error'] : query.state ? [query.state] : null;
    const search = query.search?.trim()
      ? `%${query.search
          .trim()
          .toLowerCase()
          .replace(/[%_\\]/g, '\\$&')}%`
      : null;
    const limit = Math.min(Math.max(query.limit ?? 50, 1), 500);
    const offset = Math.max(query.offset ?? 0, 0);
    // A page stops early along an index (LIMIT): a parallel plan's start-up costs more than the
    // page (at 100,000 organizations the attention page took 50 ms in parallel, 8 ms without).
    const rows = await this.dataSource.transaction(async (manager) => {
      await manager.query('SET LOCAL max_parallel_workers_per_gather = 0');
      return manager.query<
        {
          id: string;
          name: string;
          slug: string;
          epic_environment: string;
          fhir_base_url: string | null;
          fhir_server_name: string | null;
          state: ConnectionState;
          token_expires_at: Date | null;
          ends_at: Date | null;
          refreshable: boolean;
          last_sync: Date | null;
          last_error: string | null;
          last_error_at: Date | null;
        }[]
      >(
        `${LIST_SOURCE}
       SELECT l.* FROM l
        WHERE ($3::text[] IS NULL OR state = ANY($3::text[]))
          AND ($4::text IS NULL OR lower(name) LIKE $4 OR slug LIKE $4)
        ORDER BY ${SORTS[query.sort ?? 'name']}
        LIMIT ${limit} OFFSET ${offset}`,
        [now, new Date(now.getTime() + this.warningMs), states, search],
      );
    });
    let total: number;
    if (counts && search === null) {
      total = (states ?? CONNECTION_STATES).reduce(
        (sum, state) => sum + (counts[state as ConnectionState] ?? 0),
        0,
      );
    } else {
      const [row] = await this.dataSource.query<{ total: string }[]>(
        `${LIST_SOURCE}
         SELECT count(*) AS total FROM l
          WHERE ($3::text[] IS NULL OR state = ANY($3::text[]))
            AND ($4::text IS NULL OR lower(name) LIKE $4 OR slug LIKE $4)`,
        [now, new Date(now.getTime() + this.warningMs), states, search],
      );
      total = Number(row.total);
    }
    return {
      total,
      items: rows.map((r) => ({
        organizationId: r.id,
        name: r.name,
        slug: r.slug,
        environment: r.epic_environment,
        fhirBaseUrl: r.fhir_base_url,
        fhirServerName: r.fhir_server_name,
        state: r.state,
        tokenExpiresAt: r.token_expires_at ? new Date(r.token_expires_at) : null,
        endsAt: r.ends_at ? new Date(r.ends_at) : null,
        refreshable: r.refreshable,
        lastSync: r.last_sync ? new Date(r.last_sync) : null,
        lastError: spoken(
          r.last_error,
          serverLabel({ fhirBaseUrl: r.fhir_base_url, fhirServerName: r.fhir_server_name }),
        ),
        lastErrorAt: r.last_error_at ? new Date(r.last_error_at) : null,
      })),
    };
  }

  /**
   * Per organization connection, for the metrics: seconds until the access token expires, and until
   * the connection stops working without a new sign-in (null when it refreshes indefinitely).
   * Negative: already past.
   */
  async secondsToExpiry(
    now = new Date(),
  ): Promise<{ organizationId: string; accessTokenSeconds: number; endSeconds: number | null }[]> {
    const rows = await this.dataSource.query<{ id: string; expires_at: Date; ends_at: Date | null }[]>(
      `SELECT c.organization_id AS id, c.expires_at,
              CASE WHEN c.renewable THEN c.refresh_expires_at ELSE c.expires_at END AS ends_at
         FROM epic_credential c
        WHERE c.user_id IS NULL`,
    );
    const seconds = (date: Date) => Math.round((new Date(date).getTime() - now.getTime()) / 1000);
    return rows.map((r) => ({
      organizationId: r.id,
      accessTokenSeconds: seconds(r.expires_at),
      endSeconds: r.ends_at ? seconds(r.ends_at) : null,
    }));
  }

  /**
   * One page of organization credentials that need a look, ordered by (expires_at, id): refreshable
   * ones whose access token is due before `refreshBefore`, others whose token ends before
   * `lookBefore`, and any whose refresh token ends before `lookBefore`.
   */
  async candidates(
    refreshBefore: Date,
    lookBefore: Date,
    after: { expiresAt: Date; id: string } | null,
    limit: number,
  ): Promise<ConnectionCandidate[]> {
    const rows = await this.dataSource.query<
      { id: string; organization_id: string; version: number; expires_at: Date; refreshable: boolean }[]
    >(
      `SELECT c.id, c.organization_id, c.version, c.expires_at, c.renewable AS refreshable
         FROM epic_credential c
        WHERE c.user_id IS NULL
          AND (   (c.expires_at < $1 AND c.renewable)
               OR (c.expires_at < $2 AND NOT c.renewable)
               OR c.refresh_expires_at < $2)
          AND ($3::timestamptz IS NULL OR (c.expires_at, c.id) > ($3::timestamptz, $4::uuid))
        ORDER BY c.expires_at, c.id
        LIMIT ${Math.max(1, Math.floor(limit))}`,
      [refreshBefore, lookBefore, after?.expiresAt ?? null, after?.id ?? null],
    );
    return rows.map((r) => ({
      id: r.id,
      organizationId: r.organization_id,
      version: r.version,
      expiresAt: new Date(r.expires_at),
      refreshable: r.refreshable,
    }));
  }

  /**
   * A page of organizations, by id after `afterId`, whose admins were told of a problem or whose
   * connection has a recorded failure (few; a partial index): the scheduled check looks at them
   * again so a missed event cannot leave a stale notice.
   */
  async flagged(afterId: string, limit: number): Promise<string[]> {
    const rows = await this.dataSource.query<{ id: string }[]>(
      `SELECT organization_id AS id FROM organization_connection
        WHERE (notified_state IN ('expiring', 'expired', 'error') OR last_error IS NOT NULL)
          AND organization_id > $1
        ORDER BY organization_id LIMIT ${Math.max(1, Math.floor(limit))}`,
      [afterId],
    );
    return rows.map((r) => r.id);
  }

  private toSnapshot(row: FactsRow, now: Date): ConnectionSnapshot {
    const facts: ConnectionFacts = {
      configured: row.configured,
      credential: row.credential_id
        ? {
            expiresAt: new Date(row.expires_at!),
            refreshable: row.refreshable === true,
            refreshExpiresAt: row.refresh_expires_at ? new Date(row.refresh_expires_at) : null,
          }
        : null,
      lastError: row.last_error,
      tokenExpiry: row.token_expiry ? new Date(row.token_expiry) : null,
    };
    const server = serverLabel({ fhirBaseUrl: row.fhir_base_url, fhirServerName: row.fhir_server_name });
    return {
      organizationId: row.id,
      organizationName: row.name,
      facts,
      state: deriveConnectionState(facts, now, this.warningMs),
      endsAt: connectionEnd(facts.credential),
      lastError: spoken(row.last_error, server),
      lastErrorAt: row.last_error_at ? new Date(row.last_error_at) : null,
      lastSync: row.last_sync ? new Date(row.last_sync) : null,
      notifiedState: row.notified_state,
      scopes: row.credential_id ? (row.scopes ?? '').split(' ').filter(Boolean) : [],
      patientId: row.credential_id ? row.patient_id : null,
      server,
    };
  }
}

/** A stored message (written of Epic) as this organization's server is called (server-label.ts). */
function spoken(message: string | null, server: ServerLabel): string | null {
  return message === null ? null : speakOfServer(message, server);
}
