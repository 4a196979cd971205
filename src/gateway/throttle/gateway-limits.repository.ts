import { Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

/** A root admin's override of an organization's limits; null keeps the default. */
export interface LimitsOverride {
  ratePerSecond: number | null;
  concurrency: number | null;
}

const NO_OVERRIDE: LimitsOverride = { ratePerSecond: null, concurrency: null };

/** Per-organization overrides of the gateway limits (`gateway_limits`); no row: the defaults. */
@Injectable()
export class GatewayLimitsRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** The override in force (nulls when there is none); `lock` holds the row until `manager` commits. */
  async find(organizationId: string, manager?: EntityManager, lock = false): Promise<LimitsOverride> {
    const [row] = await (manager ?? this.dataSource).query<
      { rate_per_second: number | null; concurrency: number | null }[]
    >(
      `SELECT rate_per_second, concurrency FROM gateway_limits WHERE organization_id = $1${lock ? ' FOR UPDATE' : ''}`,
      [organizationId],
    );
    return row ? { ratePerSecond: row.rate_per_second, concurrency: row.concurrency } : { ...NO_OVERRIDE };
  }

  /** Stores the override; one with neither limit set is deleted (the defaults apply). */
  async save(
    organizationId: string,
    override: LimitsOverride,
    updatedBy: string | null,
    manager: EntityManager,
  ): Promise<void> {
    if (override.ratePerSecond === null && override.concurrency === null) {
      await manager.query(`DELETE FROM gateway_limits WHERE organization_id = $1`, [organizationId]);
      return;
    }
    await manager.query(
      `INSERT INTO gateway_limits (organization_id, rate_per_second, concurrency, updated_by, updated_at)
       VALUES ($1, $2, $3, $4, now())
       ON CONFLICT (organization_id) DO UPDATE
          SET rate_per_second = EXCLUDED.rate_per_second, concurrency = EXCLUDED.concurrency,
              updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at`,
      [organizationId, override.ratePerSecond, override.concurrency, updatedBy],
    );
  }
}
