import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * ConnectionHealth storage: the refresh token's own end where a server tells it, the state each
 * organization's admins were last told about (notifications once per transition), in-app
 * notifications with per-user read receipts, the webhook outbox (nothing lost across crashes or
 * a failing webhook), and a record of every scheduled run (for /health and ops).
 */
export class CreateConnectionHealth1763910000000 implements MigrationInterface {
  name = 'CreateConnectionHealth1763910000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "epic_credential" ADD "refresh_expires_at" timestamptz`);
    await q.query(
      `CREATE INDEX "ix_epic_credential_refresh_expires_at" ON "epic_credential" ("refresh_expires_at")
         WHERE "refresh_expires_at" IS NOT NULL`,
    );
    await q.query(`ALTER TABLE "organization" ADD "notified_state" varchar(20)`);
    await q.query(`ALTER TABLE "organization" ADD "notified_state_at" timestamptz`);
    await q.query(`
      CREATE TABLE "notification" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "organization_id" uuid NOT NULL,
        "kind" varchar(20) NOT NULL CONSTRAINT "ck_notification_kind" CHECK ("kind" IN ('attention', 'resolved')),
        "state" varchar(20) NOT NULL,
        "previous_state" varchar(20),
        "title" varchar(300) NOT NULL,
        "message" text NOT NULL,
        "link" varchar(500),
        "created_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_notification" PRIMARY KEY ("id"),
        CONSTRAINT "fk_notification_organization" FOREIGN KEY ("organization_id")
          REFERENCES "organization" ("id") ON DELETE CASCADE
      )`);
    await q.query(
      `CREATE INDEX "ix_notification_organization_created" ON "notification" ("organization_id", "created_at" DESC)`,
    );
    await q.query(`CREATE INDEX "ix_notification_created" ON "notification" ("created_at" DESC)`);
    await q.query(`
      CREATE TABLE "notification_read" (
        "notification_id" uuid NOT NULL,
        "user_id" uuid NOT NULL,
        "read_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_notification_read" PRIMARY KEY ("notification_id", "user_id"),
        CONSTRAINT "fk_notification_read_notification" FOREIGN KEY ("notification_id")
          REFERENCES "notification" ("id") ON DELETE CASCADE,
        CONSTRAINT "fk_notification_read_user" FOREIGN KEY ("user_id")
          REFERENCES "app_user" ("id") ON DELETE CASCADE
      )`);
    await q.query(`CREATE INDEX "ix_notification_read_user" ON "notification_read" ("user_id")`);
    await q.query(`
      CREATE TABLE "notification_outbox" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "notification_id" uuid NOT NULL,
        "channel" varchar(20) NOT NULL,
        "payload" jsonb NOT NULL,
        "status" varchar(20) NOT NULL DEFAULT 'pending'
          CONSTRAINT "ck_notification_outbox_status" CHECK ("status" IN ('pending', 'delivered', 'failed')),
        "attempts" integer NOT NULL DEFAULT 0,
        "next_attempt_at" timestamptz NOT NULL DEFAULT now(),
        "last_error" text,
        "delivered_at" timestamptz,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_notification_outbox" PRIMARY KEY ("id"),
        CONSTRAINT "fk_notification_outbox_notification" FOREIGN KEY ("notification_id")
          REFERENCES "notification" ("id") ON DELETE CASCADE
      )`);
    await q.query(
      `CREATE INDEX "ix_notification_outbox_due" ON "notification_outbox" ("next_attempt_at") WHERE "status" = 'pending'`,
    );
    await q.query(`
      CREATE TABLE "scheduled_run" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "job" varchar(60) NOT NULL,
        "started_at" timestamptz NOT NULL,
        "finished_at" timestamptz,
        "outcome" varchar(20) NOT NULL DEFAULT 'running'
          CONSTRAINT "ck_scheduled_run_outcome" CHECK ("outcome" IN ('running', 'success', 'failure')),
        "counts" jsonb NOT NULL DEFAULT '{}',
        "error" text,
        CONSTRAINT "pk_scheduled_run" PRIMARY KEY ("id")
      )`);
    await q.query(
      `CREATE INDEX "ix_scheduled_run_job_started" ON "scheduled_run" ("job", "started_at" DESC)`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "scheduled_run"`);
    await q.query(`DROP TABLE "notification_outbox"`);
    await q.query(`DROP TABLE "notification_read"`);
    await q.query(`DROP TABLE "notification"`);
    await q.query(`ALTER TABLE "organization" DROP COLUMN "notified_state_at"`);
    await q.query(`ALTER TABLE "organization" DROP COLUMN "notified_state"`);
    await q.query(`DROP INDEX "ix_epic_credential_refresh_expires_at"`);
    await q.query(`ALTER TABLE "epic_credential" DROP COLUMN "refresh_expires_at"`);
  }
}
