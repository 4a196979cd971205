import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A signing key set per environment: organizations in the sandbox (non-production) environment
 * sign with one set, published at its own JWK Set URL, and production ones with another, as Epic
 * asks (https://fhir.epic.com/Documentation?docId=oauth2, "Hosting a JWK Set URL").
 *
 * Until now a deployment had one set, served at `/.well-known/jwks.json`, and that is the URL
 * registered at Epic. The existing keys become the **production** set, which keeps that URL: a
 * production connection goes on verifying with nothing to re-register. The sandbox set is new (made
 * at the next start, with its own URL `/.well-known/jwks-sandbox.json`); sandbox organizations that
 * use private_key_jwt need that URL registered at their non-production client (src/client-keys/README.md).
 *
 * At most one `active` and one `next` key per environment and algorithm (the backstop for
 * instances racing). No default: every key is made for a named environment.
 */
export class SigningKeysPerEnvironment1764040000000 implements MigrationInterface {
  name = 'SigningKeysPerEnvironment1764040000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `ALTER TABLE "client_signing_key" ADD "environment" text NOT NULL DEFAULT 'production'
         CONSTRAINT "ck_client_signing_key_environment" CHECK ("environment" IN ('sandbox', 'production'))`,
    );
    await q.query(`ALTER TABLE "client_signing_key" ALTER COLUMN "environment" DROP DEFAULT`);
    await q.query(`DROP INDEX "uq_client_signing_key_active_alg"`);
    await q.query(`DROP INDEX "uq_client_signing_key_next_alg"`);
    await q.query(
      `CREATE UNIQUE INDEX "uq_client_signing_key_active_env_alg" ON "client_signing_key" ("environment", "alg")
         WHERE "state" = 'active'`,
    );
    await q.query(
      `CREATE UNIQUE INDEX "uq_client_signing_key_next_env_alg" ON "client_signing_key" ("environment", "alg")
         WHERE "state" = 'next'`,
    );
  }

  /** Back to one set: the production keys stay (still at the old URL); the sandbox set is dropped. */
  async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM "client_signing_key" WHERE "environment" = 'sandbox'`);
    await q.query(`DROP INDEX "uq_client_signing_key_next_env_alg"`);
    await q.query(`DROP INDEX "uq_client_signing_key_active_env_alg"`);
    await q.query(
      `CREATE UNIQUE INDEX "uq_client_signing_key_active_alg" ON "client_signing_key" ("alg") WHERE "state" = 'active'`,
    );
    await q.query(
      `CREATE UNIQUE INDEX "uq_client_signing_key_next_alg" ON "client_signing_key" ("alg") WHERE "state" = 'next'`,
    );
    await q.query(`ALTER TABLE "client_signing_key" DROP COLUMN "environment"`);
  }
}
