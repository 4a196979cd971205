import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** How long the gateway remembers who started a Bulk Data job (rows deleted at the next kick-off). */
export const BULK_JOB_RETENTION_DAYS = 30;

/** The SQL on `gateway_bulk_job`: which API key kicked off which export (migration 1764120000000). */
@Injectable()
export class BulkJobsRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Records that `apiKeyId` started `job` (its status path under the FHIR base), and forgets the
   * organization's jobs older than BULK_JOB_RETENTION_DAYS. A job the server hands out again (HAPI
   * FHIR reuses an identical export under way) is each kicking key's: every key that kicked it off
   * may use it, and a key's kick-off again renews its own row.
   */
  async record(organizationId: string, job: string, apiKeyId: string): Promise<void> {
    await this.dataSource.query(
      `INSERT INTO gateway_bulk_job (organization_id, job, api_key_id) VALUES ($1, $2, $3)
       ON CONFLICT (organization_id, job, api_key_id) DO UPDATE SET created_at = now()`,
      [organizationId, job, apiKeyId],
    );
    await this.dataSource.query(
      `DELETE FROM gateway_bulk_job
        WHERE organization_id = $1 AND created_at < now() - make_interval(days => $2)`,
      [organizationId, BULK_JOB_RETENTION_DAYS],
    );
  }

  /** Whether the key (its public id) kicked off `job` within BULK_JOB_RETENTION_DAYS. */
  async startedBy(organizationId: string, job: string, apiKeyId: string): Promise<boolean> {
    const rows = await this.dataSource.query<unknown[]>(
      `SELECT 1 FROM gateway_bulk_job
        WHERE organization_id = $1 AND job = $2 AND api_key_id = $3
          AND created_at >= now() - make_interval(days => $4)`,
      [organizationId, job, apiKeyId, BULK_JOB_RETENTION_DAYS],
    );
    return rows.length > 0;
  }
}
