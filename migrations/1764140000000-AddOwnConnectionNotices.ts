import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Users' own connections (src/connection-health/README.md, "Users' own connections"):
 *
 * - `app_user.contact_email` (Users): where a provider or patient is emailed. From the verified
 *   id_token's `email` claim at launch, or entered by them on their page; never the
 *   `…@launch.invalid` placeholder in `email`. `contact_email_source` says which (`id_token` or
 *   `entered`); an address the user entered (or cleared: null with `entered`) is not replaced by a
 *   later launch's claim.
 * - `user_connection_notice` (ConnectionHealth): one row per ended user credential (unique on the
 *   credential and when it ended: the idempotency key of "one email per connection ending"), shown
 *   on the user's page until they connect again, and mailed once through `notification_outbox`
 *   (`mail_pending` until planned, `outbox_id` once composed).
 */
export class AddOwnConnectionNotices1764140000000 implements MigrationInterface {
  name = 'AddOwnConnectionNotices1764140000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "app_user" ADD "contact_email" varchar(320)`);
    await q.query(
      `ALTER TABLE "app_user" ADD "contact_email_source" varchar(10)
         CONSTRAINT "ck_app_user_contact_email_source" CHECK ("contact_email_source" IN ('id_token', 'entered'))`,
    );
    await q.query(`
      CREATE TABLE "user_connection_notice" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "user_id" uuid NOT NULL,
        "organization_id" uuid NOT NULL,
        "credential_id" uuid NOT NULL,
        "ended_at" timestamptz NOT NULL,
        "reason" text,
        "mail_pending" boolean NOT NULL DEFAULT false,
        "mail_due_at" timestamptz,
        "outbox_id" uuid,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_user_connection_notice" PRIMARY KEY ("id"),
        CONSTRAINT "uq_user_connection_notice_ending" UNIQUE ("credential_id", "ended_at"),
        CONSTRAINT "fk_user_connection_notice_user" FOREIGN KEY ("user_id")
          REFERENCES "app_user" ("id") ON DELETE CASCADE,
        CONSTRAINT "fk_user_connection_notice_organization" FOREIGN KEY ("organization_id")
          REFERENCES "organization" ("id") ON DELETE CASCADE
      )`);
    await q.query(
      `CREATE INDEX "ix_user_connection_notice_user" ON "user_connection_notice" ("user_id", "created_at")`,
    );
    await q.query(
      `CREATE INDEX "ix_user_connection_notice_mail" ON "user_connection_notice" ("mail_due_at") WHERE "mail_pending"`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "user_connection_notice"`);
    await q.query(`ALTER TABLE "app_user" DROP COLUMN "contact_email_source"`);
    await q.query(`ALTER TABLE "app_user" DROP COLUMN "contact_email"`);
  }
}
