import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Asymmetric client authentication (docs/epic-and-smart.md §3, §9):
 * - organizations may authenticate with `private_key_jwt`, signing with the service's RS384 or
 *   ES384 key, and may connect as a backend service (client_credentials), which requires it;
 * - a credential records the grant it came from; `renewable` says whether it can be renewed
 *   without anyone signing in (a refresh token, or a client_credentials grant), one definition
 *   that every query uses.
 */
export class AddAsymmetricClientAuth1763970000000 implements MigrationInterface {
  name = 'AddAsymmetricClientAuth1763970000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "organization" DROP CONSTRAINT "ck_organization_epic_token_auth_method"`);
    await q.query(
      `ALTER TABLE "organization" ADD CONSTRAINT "ck_organization_epic_token_auth_method"
         CHECK ("epic_token_auth_method" IN ('client_secret_basic', 'client_secret_post', 'private_key_jwt'))`,
    );
    await q.query(
      `ALTER TABLE "organization" ADD "epic_assertion_alg" varchar(10) NOT NULL DEFAULT 'RS384'
         CONSTRAINT "ck_organization_epic_assertion_alg" CHECK ("epic_assertion_alg" IN ('RS384', 'ES384'))`,
    );
    await q.query(
      `ALTER TABLE "organization" ADD "epic_connection_mode" varchar(20) NOT NULL DEFAULT 'interactive'
         CONSTRAINT "ck_organization_epic_connection_mode" CHECK ("epic_connection_mode" IN ('interactive', 'backend'))`,
    );
    await q.query(
      `ALTER TABLE "organization" ADD CONSTRAINT "ck_organization_backend_uses_jwt"
         CHECK ("epic_connection_mode" <> 'backend' OR "epic_token_auth_method" = 'private_key_jwt')`,
    );
    await q.query(
      `ALTER TABLE "epic_credential" ADD "grant_type" varchar(30) NOT NULL DEFAULT 'authorization_code'
         CONSTRAINT "ck_epic_credential_grant_type" CHECK ("grant_type" IN ('authorization_code', 'client_credentials'))`,
    );
    await q.query(
      `ALTER TABLE "epic_credential" ADD "renewable" boolean
         GENERATED ALWAYS AS ("refresh_token_enc" IS NOT NULL OR "grant_type" = 'client_credentials') STORED`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "epic_credential" DROP COLUMN "renewable"`);
    await q.query(`ALTER TABLE "epic_credential" DROP COLUMN "grant_type"`);
    await q.query(`ALTER TABLE "organization" DROP CONSTRAINT "ck_organization_backend_uses_jwt"`);
    await q.query(`ALTER TABLE "organization" DROP COLUMN "epic_connection_mode"`);
    await q.query(`ALTER TABLE "organization" DROP COLUMN "epic_assertion_alg"`);
    await q.query(`ALTER TABLE "organization" DROP CONSTRAINT "ck_organization_epic_token_auth_method"`);
    await q.query(
      `ALTER TABLE "organization" ADD CONSTRAINT "ck_organization_epic_token_auth_method"
         CHECK ("epic_token_auth_method" IN ('client_secret_basic', 'client_secret_post'))`,
    );
  }
}
