import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * One owner for the connection: an organization's connection-health facts move from
 * `organization` to `organization_connection` (owned by the Connections module, one row per
 * organization that ever had one), and each credential remembers the FHIR base its tokens were
 * issued for. Every value is copied; `down` copies them back.
 */
export class MoveConnectionStateToConnections1764080000000 implements MigrationInterface {
  name = 'MoveConnectionStateToConnections1764080000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "organization_connection" (
        "organization_id" uuid PRIMARY KEY REFERENCES "organization" ("id") ON DELETE CASCADE,
        "is_connected" boolean NOT NULL DEFAULT false,
        "token_expiry" timestamptz,
        "last_sync" timestamptz,
        "last_error" text,
        "last_error_at" timestamptz,
        "notified_state" varchar(20),
        "notified_state_at" timestamptz,
        "updated_at" timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      INSERT INTO "organization_connection"
        ("organization_id", "is_connected", "token_expiry", "last_sync", "last_error", "last_error_at",
         "notified_state", "notified_state_at")
      SELECT "id", "is_connected", "token_expiry", "last_sync", "last_error", "last_error_at",
             "notified_state", "notified_state_at"
        FROM "organization"
       WHERE "is_connected" OR "token_expiry" IS NOT NULL OR "last_sync" IS NOT NULL
          OR "last_error" IS NOT NULL OR "notified_state" IS NOT NULL`);
    // The scheduled check re-reads connections whose admins were told of a problem or which failed.
    await q.query(
      `CREATE INDEX "ix_organization_connection_attention" ON "organization_connection" ("organization_id")
        WHERE "notified_state" IN ('expiring', 'expired', 'error') OR "last_error" IS NOT NULL`,
    );
    await q.query(`DROP INDEX IF EXISTS "ix_organization_notified_attention"`);
    await q.query(`DROP INDEX IF EXISTS "ix_organization_last_error"`);
    for (const column of [
      'is_connected',
      'token_expiry',
      'last_sync',
      'last_error',
      'last_error_at',
      'notified_state',
      'notified_state_at',
    ]) {
      await q.query(`ALTER TABLE "organization" DROP COLUMN "${column}"`);
    }

    await q.query(`ALTER TABLE "epic_credential" ADD "fhir_base_url" varchar(2048)`);
    await q.query(`
      UPDATE "epic_credential" c SET "fhir_base_url" = o."fhir_base_url"
        FROM "organization" o WHERE o."id" = c."organization_id"`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "epic_credential" DROP COLUMN "fhir_base_url"`);
    await q.query(`ALTER TABLE "organization" ADD "is_connected" boolean NOT NULL DEFAULT false`);
    await q.query(`ALTER TABLE "organization" ADD "token_expiry" timestamptz`);
    await q.query(`ALTER TABLE "organization" ADD "last_sync" timestamptz`);
    await q.query(`ALTER TABLE "organization" ADD "last_error" text`);
    await q.query(`ALTER TABLE "organization" ADD "last_error_at" timestamptz`);
    await q.query(`ALTER TABLE "organization" ADD "notified_state" varchar(20)`);
    await q.query(`ALTER TABLE "organization" ADD "notified_state_at" timestamptz`);
    await q.query(`
      UPDATE "organization" o
         SET "is_connected" = s."is_connected", "token_expiry" = s."token_expiry", "last_sync" = s."last_sync",
             "last_error" = s."last_error", "last_error_at" = s."last_error_at",
             "notified_state" = s."notified_state", "notified_state_at" = s."notified_state_at"
        FROM "organization_connection" s WHERE s."organization_id" = o."id"`);
    await q.query(
      `CREATE INDEX "ix_organization_notified_attention" ON "organization" ("id")
        WHERE "notified_state" IN ('expiring', 'expired', 'error')`,
    );
    await q.query(
      `CREATE INDEX "ix_organization_last_error" ON "organization" ("id") WHERE "last_error" IS NOT NULL`,
    );
    await q.query(`DROP TABLE "organization_connection"`);
  }
}
