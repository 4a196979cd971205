import { MigrationInterface, QueryRunner } from 'typeorm';

/** Organizations, users, the audit trail and the session table (connect-pg-simple's layout). */
export class CreateFoundationSchema1763890000000 implements MigrationInterface {
  name = 'CreateFoundationSchema1763890000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "organization" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "name" varchar(200) NOT NULL,
        "slug" varchar(100) NOT NULL,
        "epic_environment" varchar(20) NOT NULL DEFAULT 'sandbox',
        "fhir_base_url" varchar(2048),
        "epic_client_id" varchar(200),
        "client_secret_enc" text,
        "is_connected" boolean NOT NULL DEFAULT false,
        "token_expiry" timestamptz,
        "last_sync" timestamptz,
        "last_error" text,
        "last_error_at" timestamptz,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_organization" PRIMARY KEY ("id"),
        CONSTRAINT "uq_organization_slug" UNIQUE ("slug"),
        CONSTRAINT "ck_organization_epic_environment" CHECK ("epic_environment" IN ('sandbox', 'production'))
      )`);
    await q.query(`CREATE INDEX "ix_organization_lower_name" ON "organization" (lower("name"))`);
    await q.query(`
      CREATE TABLE "app_user" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "email" varchar(320) NOT NULL,
        "password_hash" text,
        "role" varchar(20) NOT NULL,
        "organization_id" uuid,
        "disabled" boolean NOT NULL DEFAULT false,
        "must_change_password" boolean NOT NULL DEFAULT false,
        "failed_login_count" integer NOT NULL DEFAULT 0,
        "locked_until" timestamptz,
        "last_login_at" timestamptz,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_app_user" PRIMARY KEY ("id"),
        CONSTRAINT "fk_app_user_organization" FOREIGN KEY ("organization_id")
          REFERENCES "organization" ("id") ON DELETE CASCADE,
        CONSTRAINT "ck_app_user_role" CHECK ("role" IN ('root_admin', 'org_admin', 'provider', 'patient')),
        CONSTRAINT "ck_app_user_organization_by_role" CHECK (("role" = 'root_admin') = ("organization_id" IS NULL))
      )`);
    await q.query(`CREATE UNIQUE INDEX "uq_app_user_lower_email" ON "app_user" (lower("email"))`);
    await q.query(`CREATE INDEX "ix_app_user_organization" ON "app_user" ("organization_id")`);
    await q.query(`
      CREATE TABLE "audit_event" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "occurred_at" timestamptz NOT NULL DEFAULT now(),
        "actor_user_id" uuid,
        "actor_label" varchar(320),
        "organization_id" uuid,
        "organization_label" varchar(200),
        "action" varchar(100) NOT NULL,
        "outcome" varchar(20) NOT NULL,
        "detail" jsonb NOT NULL DEFAULT '{}'::jsonb,
        CONSTRAINT "pk_audit_event" PRIMARY KEY ("id"),
        CONSTRAINT "fk_audit_event_actor" FOREIGN KEY ("actor_user_id")
          REFERENCES "app_user" ("id") ON DELETE SET NULL,
        CONSTRAINT "fk_audit_event_organization" FOREIGN KEY ("organization_id")
          REFERENCES "organization" ("id") ON DELETE SET NULL,
        CONSTRAINT "ck_audit_event_outcome" CHECK ("outcome" IN ('success', 'failure'))
      )`);
    await q.query(`CREATE INDEX "ix_audit_event_occurred_at" ON "audit_event" ("occurred_at" DESC)`);
    await q.query(
      `CREATE INDEX "ix_audit_event_organization" ON "audit_event" ("organization_id", "occurred_at" DESC)`,
    );
    await q.query(`
      CREATE TABLE "user_session" (
        "sid" varchar NOT NULL,
        "sess" json NOT NULL,
        "expire" timestamp(6) NOT NULL,
        CONSTRAINT "pk_user_session" PRIMARY KEY ("sid")
      )`);
    await q.query(`CREATE INDEX "ix_user_session_expire" ON "user_session" ("expire")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "user_session"`);
    await q.query(`DROP TABLE "audit_event"`);
    await q.query(`DROP TABLE "app_user"`);
    await q.query(`DROP TABLE "organization"`);
  }
}
