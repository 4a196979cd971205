import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The FHIR gateway's Bulk Data jobs (src/gateway/README.md, "Bulk Data"): which API key kicked off
 * which export, so that only the keys that kicked it off may poll it, download Epic's files
 * (`BulkRequest/<id>/<file>`) and cancel it; HAPI FHIR's files are Binary resources, not bound to a
 * job (src/gateway/README.md, "Known limits"). One row per key and job the server accepted (202 with
 * Content-Location), written before the 202 reaches the caller; read only for a job's own URLs. HAPI
 * FHIR hands an identical export under way to a second kick-off: each key that kicked it off has its
 * row, so each may use it.
 *
 * `job` is the job's status URL under the FHIR base, as the gateway matches it: `BulkRequest/<id>`
 * (Epic), `$export-poll-status?_jobId=<id>` (HAPI FHIR). `api_key_id` is the key's public id, not a
 * foreign key (as in `gateway_access`): a revoked key cannot authenticate anyway. Rows go with their
 * organization, and are deleted after 30 days (at the organization's next kick-off).
 */
export class CreateGatewayBulkJob1764120000000 implements MigrationInterface {
  name = 'CreateGatewayBulkJob1764120000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "gateway_bulk_job" (
        "organization_id" uuid NOT NULL,
        "job" text NOT NULL,
        "api_key_id" text NOT NULL,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_gateway_bulk_job" PRIMARY KEY ("organization_id", "job", "api_key_id"),
        CONSTRAINT "fk_gateway_bulk_job_organization" FOREIGN KEY ("organization_id")
          REFERENCES "organization" ("id") ON DELETE CASCADE
      )`);
    await q.query(
      `CREATE INDEX "ix_gateway_bulk_job_organization_created_at" ON "gateway_bulk_job" ("organization_id", "created_at")`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "gateway_bulk_job"`);
  }
}
