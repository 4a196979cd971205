import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Email notifications (src/mail/README.md, src/connection-health/README.md "Email"):
 *
 * - `notification.mail_pending`: a notification whose email recipients are still to be worked out
 *   (set in the notifier's transaction when email is configured; cleared by the mail planner).
 * - `notification_recipient` (ConnectionHealth): one row per notification and recipient: the
 *   idempotency key of "at most one email per transition per recipient". `mode` says how it is sent
 *   (`immediate`, `burst`: folded with others of a short window, `digest`: the daily digest),
 *   `due_at` when, and `outbox_id` which email carried it once composed.
 * - `notification_outbox` gains emails: `channel = 'email'`, one row per message, addressed to
 *   `recipient_user_id`; a digest covers several notifications, so `notification_id` may be null.
 * - `mail_preference` (Mail): per user and channel, `immediate`, `digest` or `off` (no row: the default).
 * - `mail_unsubscribe` (Mail): the unsubscribe links used, so that each works once.
 */
export class CreateMailNotifications1764130000000 implements MigrationInterface {
  name = 'CreateMailNotifications1764130000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "notification" ADD "mail_pending" boolean NOT NULL DEFAULT false`);
    await q.query(
      `CREATE INDEX "ix_notification_mail_pending" ON "notification" ("created_at") WHERE "mail_pending"`,
    );
    await q.query(`ALTER TABLE "notification_outbox" ALTER COLUMN "notification_id" DROP NOT NULL`);
    await q.query(`ALTER TABLE "notification_outbox" ADD "recipient_user_id" uuid`);
    await q.query(
      `ALTER TABLE "notification_outbox" ADD CONSTRAINT "fk_notification_outbox_recipient"
         FOREIGN KEY ("recipient_user_id") REFERENCES "app_user" ("id") ON DELETE CASCADE`,
    );
    await q.query(
      `ALTER TABLE "notification_outbox" ADD CONSTRAINT "ck_notification_outbox_target" CHECK (
         ("channel" = 'email' AND "recipient_user_id" IS NOT NULL)
         OR ("channel" <> 'email' AND "notification_id" IS NOT NULL))`,
    );
    await q.query(
      `CREATE INDEX "ix_notification_outbox_recipient_created" ON "notification_outbox" ("recipient_user_id", "created_at")
         WHERE "recipient_user_id" IS NOT NULL`,
    );
    await q.query(`
      CREATE TABLE "notification_recipient" (
        "notification_id" uuid NOT NULL,
        "user_id" uuid NOT NULL,
        "mode" varchar(20) NOT NULL
          CONSTRAINT "ck_notification_recipient_mode" CHECK ("mode" IN ('immediate', 'burst', 'digest')),
        "due_at" timestamptz NOT NULL,
        "outbox_id" uuid,
        "composed_at" timestamptz,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_notification_recipient" PRIMARY KEY ("notification_id", "user_id"),
        CONSTRAINT "fk_notification_recipient_notification" FOREIGN KEY ("notification_id")
          REFERENCES "notification" ("id") ON DELETE CASCADE,
        CONSTRAINT "fk_notification_recipient_user" FOREIGN KEY ("user_id")
          REFERENCES "app_user" ("id") ON DELETE CASCADE
      )`);
    await q.query(
      `CREATE INDEX "ix_notification_recipient_due" ON "notification_recipient" ("due_at") WHERE "composed_at" IS NULL`,
    );
    await q.query(`
      CREATE TABLE "mail_preference" (
        "user_id" uuid NOT NULL,
        "channel" varchar(40) NOT NULL,
        "mode" varchar(20) NOT NULL
          CONSTRAINT "ck_mail_preference_mode" CHECK ("mode" IN ('immediate', 'digest', 'off')),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_mail_preference" PRIMARY KEY ("user_id", "channel"),
        CONSTRAINT "fk_mail_preference_user" FOREIGN KEY ("user_id")
          REFERENCES "app_user" ("id") ON DELETE CASCADE
      )`);
    await q.query(`
      CREATE TABLE "mail_unsubscribe" (
        "token_id" uuid NOT NULL,
        "user_id" uuid NOT NULL,
        "channel" varchar(40) NOT NULL,
        "used_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_mail_unsubscribe" PRIMARY KEY ("token_id"),
        CONSTRAINT "fk_mail_unsubscribe_user" FOREIGN KEY ("user_id")
          REFERENCES "app_user" ("id") ON DELETE CASCADE
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "mail_unsubscribe"`);
    await q.query(`DROP TABLE "mail_preference"`);
    await q.query(`DROP TABLE "notification_recipient"`);
    await q.query(`DROP INDEX "ix_notification_outbox_recipient_created"`);
    await q.query(`ALTER TABLE "notification_outbox" DROP CONSTRAINT "ck_notification_outbox_target"`);
    await q.query(`ALTER TABLE "notification_outbox" DROP CONSTRAINT "fk_notification_outbox_recipient"`);
    await q.query(`ALTER TABLE "notification_outbox" DROP COLUMN "recipient_user_id"`);
    await q.query(`DELETE FROM "notification_outbox" WHERE "channel" = 'email'`);
    await q.query(`ALTER TABLE "notification_outbox" ALTER COLUMN "notification_id" SET NOT NULL`);
    await q.query(`DROP INDEX "ix_notification_mail_pending"`);
    await q.query(`ALTER TABLE "notification" DROP COLUMN "mail_pending"`);
  }
}
