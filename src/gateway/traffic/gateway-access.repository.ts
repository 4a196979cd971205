import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

import { isForeignKeyViolation } from 'src/database/pg-errors';

import type { GatewayAccess, TrafficHour } from './gateway-traffic.types';

/** Rows one sweep statement deletes: short statements, no long lock on a large table. */
export const SWEEP_BATCH = 5_000;

interface AccessRow {
  id: string;
  api_key_id: string;
  user_id: string | null;
  method: string;
  resource_type: string | null;
  status: number;
  duration_ms: number;
  bytes_sent: string;
  at: Date;
}

/** The SQL on `gateway_access`, the gateway's access records (migration 1764110000000). */
@Injectable()
export class GatewayAccessRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Inserts a batch in one statement (arrays unnested). When an organization was deleted meanwhile
   * the batch is refused as a whole: its rows are then inserted one by one, and that
   * organization's are dropped. Returns the rows written.
   */
  async insert(records: GatewayAccess[]): Promise<number> {
    if (records.length === 0) return 0;
    try {
      await this.insertRows(records);
      return records.length;
    } catch (error) {
      // An organization deleted while its records waited: write the others one by one.
      if (!isForeignKeyViolation(error) || records.length === 1) throw error;
      let written = 0;
      for (const record of records) {
        try {
          await this.insertRows([record]);
          written += 1;
        } catch (single) {
          if (!isForeignKeyViolation(single)) throw single;
        }
      }
      return written;
    }
  }

  /** An organization's records, newest first, strictly older than `before` (`at`, then id). */
  async page(
    organizationId: string,
    limit: number,
    before: { at: Date; id: string } | null,
  ): Promise<(GatewayAccess & { id: string })[]> {
    const rows = await this.dataSource.query<AccessRow[]>(
      `SELECT id::text AS id, api_key_id, user_id, method, resource_type, status, duration_ms,
              bytes_sent::text AS bytes_sent, at
         FROM gateway_access
        WHERE organization_id = $1
          AND ($2::timestamptz IS NULL OR (at, id) < ($2::timestamptz, $3::bigint))
        ORDER BY at DESC, id DESC
        LIMIT $4`,
      [organizationId, before?.at ?? null, before?.id ?? null, limit],
    );
    return rows.map((row) => ({
      id: row.id,
      organizationId,
      apiKeyId: row.api_key_id,
      userId: row.user_id,
      method: row.method,
      resourceType: row.resource_type,
      status: Number(row.status),
      durationMs: Number(row.duration_ms),
      bytesSent: Number(row.bytes_sent),
      at: new Date(row.at),
    }));
  }

  /** Requests and errors (status ≥ 400) per hour from `since` (indexed by organization and time). */
  async hourlyCounts(organizationId: string, since: Date): Promise<TrafficHour[]> {
    const rows = await this.dataSource.query<{ hour: Date; requests: number; errors: number }[]>(
      `SELECT date_trunc('hour', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour,
              count(*)::int AS requests,
              (count(*) FILTER (WHERE status >= 400))::int AS errors
         FROM gateway_access
        WHERE organization_id = $1 AND at >= $2
        GROUP BY 1`,
      [organizationId, since],
    );
    return rows.map((row) => ({ hour: new Date(row.hour), requests: row.requests, errors: row.errors }));
  }

  /** Deletes records older than `before`, SWEEP_BATCH rows per statement; returns how many. */
  async deleteOlderThan(before: Date): Promise<number> {
    let removed = 0;
    for (;;) {
      const [, count] = await this.dataSource.query<[unknown[], number]>(
        `DELETE FROM gateway_access
          WHERE id IN (SELECT id FROM gateway_access WHERE at < $1 ORDER BY at LIMIT ${SWEEP_BATCH})`,
        [before],
      );
      removed += count;
      if (count < SWEEP_BATCH) return removed;
    }
  }

  private async insertRows(records: GatewayAccess[]): Promise<void> {
    await this.dataSource.query(
      `INSERT INTO gateway_access
         (organization_id, api_key_id, user_id, method, resource_type, status, duration_ms, bytes_sent, at)
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::smallint[],
                            $7::int[], $8::bigint[], $9::timestamptz[])`,
      [
        records.map((r) => r.organizationId),
        records.map((r) => r.apiKeyId),
        records.map((r) => r.userId),
        records.map((r) => r.method),
        records.map((r) => r.resourceType),
        records.map((r) => r.status),
        records.map((r) => Math.round(r.durationMs)),
        records.map((r) => r.bytesSent),
        records.map((r) => r.at),
      ],
    );
  }
}
