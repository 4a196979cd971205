import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The FHIR gateway's access records (src/gateway/README.md, "Access records"): one row per request
 * an API key made, written in batches, kept GATEWAY_ACCESS_RETENTION_DAYS and deleted with the
 * organization. Deliberately no query string, body or resource id: they identify patients.
 *
 * `api_key_id` is the key's public id, not a foreign key: a record outlives its key's revocation.
 * `user_id` is the user whose own connection served the request (X-Epic-Connect-User), else NULL;
 * not a foreign key either, so a batch is not refused for a user deleted meanwhile.
 * Indexes: the organization's newest first (the JSON route, the page's table and chart), and the
 * timestamp alone for the retention sweep.
 */
export class CreateGatewayAccess1764110000000 implements MigrationInterface {
  name = 'CreateGatewayAccess1764110000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "gateway_access" (
        "id" bigint GENERATED ALWAYS AS IDENTITY,
        "organization_id" uuid NOT NULL,
        "api_key_id" text NOT NULL,
        "user_id" uuid,
        "method" text NOT NULL,
        "resource_type" text,
        "status" smallint NOT NULL,
        "duration_ms" int NOT NULL,
        "bytes_sent" bigint NOT NULL,
        "at" timestamptz NOT NULL,
        CONSTRAINT "pk_gateway_access" PRIMARY KEY ("id"),
        CONSTRAINT "fk_gateway_access_organization" FOREIGN KEY ("organization_id")
          REFERENCES "organization" ("id") ON DELETE CASCADE
      )`);
    await q.query(
      `CREATE INDEX "ix_gateway_access_organization_at" ON "gateway_access" ("organization_id", "at" DESC, "id" DESC)`,
    );
    await q.query(`CREATE INDEX "ix_gateway_access_at" ON "gateway_access" ("at")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "gateway_access"`);
  }
}
