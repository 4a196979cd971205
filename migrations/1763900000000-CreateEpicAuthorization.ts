import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * EpicAuth storage: the scopes an organization requests, pending authorizations (state, PKCE
 * verifier, nonce; single use, short-lived, bound to a session) and credentials (tokens
 * encrypted at rest, with a version for compare-and-set writes).
 */
export class CreateEpicAuthorization1763900000000 implements MigrationInterface {
  name = 'CreateEpicAuthorization1763900000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "organization" ADD "epic_scopes" varchar(2000)`);
    await q.query(
      `ALTER TABLE "organization" ADD "epic_token_auth_method" varchar(30) NOT NULL DEFAULT 'client_secret_basic'
         CONSTRAINT "ck_organization_epic_token_auth_method" CHECK ("epic_token_auth_method" IN ('client_secret_basic', 'client_secret_post'))`,
    );
    await q.query(`
      CREATE TABLE "pending_authorization" (
        "state_hash" varchar(64) NOT NULL,
        "organization_id" uuid NOT NULL,
        "user_id" uuid,
        "session_id" varchar(255) NOT NULL,
        "purpose" varchar(30) NOT NULL,
        "code_verifier_enc" text NOT NULL,
        "nonce" varchar(100),
        "redirect_uri" varchar(2048) NOT NULL,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "expires_at" timestamptz NOT NULL,
        "used_at" timestamptz,
        CONSTRAINT "pk_pending_authorization" PRIMARY KEY ("state_hash"),
        CONSTRAINT "fk_pending_authorization_organization" FOREIGN KEY ("organization_id")
          REFERENCES "organization" ("id") ON DELETE CASCADE,
        CONSTRAINT "fk_pending_authorization_user" FOREIGN KEY ("user_id")
          REFERENCES "app_user" ("id") ON DELETE CASCADE
      )`);
    await q.query(
      `CREATE INDEX "ix_pending_authorization_expires_at" ON "pending_authorization" ("expires_at")`,
    );
    await q.query(`
      CREATE TABLE "epic_credential" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "organization_id" uuid NOT NULL,
        "user_id" uuid,
        "purpose" varchar(30) NOT NULL,
        "access_token_enc" text NOT NULL,
        "refresh_token_enc" text,
        "expires_at" timestamptz NOT NULL,
        "scopes" text NOT NULL DEFAULT '',
        "patient_id" varchar(200),
        "encounter_id" varchar(200),
        "fhir_user" varchar(500),
        "version" integer NOT NULL DEFAULT 1,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_epic_credential" PRIMARY KEY ("id"),
        CONSTRAINT "fk_epic_credential_organization" FOREIGN KEY ("organization_id")
          REFERENCES "organization" ("id") ON DELETE CASCADE,
        CONSTRAINT "fk_epic_credential_user" FOREIGN KEY ("user_id")
          REFERENCES "app_user" ("id") ON DELETE CASCADE
      )`);
    // One organization-level connection per organization.
    await q.query(
      `CREATE UNIQUE INDEX "uq_epic_credential_organization_connection" ON "epic_credential" ("organization_id") WHERE "user_id" IS NULL`,
    );
    await q.query(`CREATE INDEX "ix_epic_credential_expires_at" ON "epic_credential" ("expires_at")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "epic_credential"`);
    await q.query(`DROP TABLE "pending_authorization"`);
    await q.query(`ALTER TABLE "organization" DROP COLUMN "epic_token_auth_method"`);
    await q.query(`ALTER TABLE "organization" DROP COLUMN "epic_scopes"`);
  }
}
