import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The service's own signing keys for private_key_jwt (src/client-keys). At most one `active` and
 * one `next` key per algorithm (partial unique indexes: the backstop for instances racing), and
 * only a retired key has no private part: retiring wipes it.
 */
export class CreateClientSigningKeys1763960000000 implements MigrationInterface {
  name = 'CreateClientSigningKeys1763960000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "client_signing_key" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "kid" text NOT NULL,
        "alg" text NOT NULL CONSTRAINT "ck_client_signing_key_alg" CHECK ("alg" IN ('RS384', 'ES384')),
        "state" text NOT NULL
          CONSTRAINT "ck_client_signing_key_state" CHECK ("state" IN ('next', 'active', 'retiring', 'retired')),
        "public_jwk" jsonb NOT NULL,
        "private_key_enc" text,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "activated_at" timestamptz,
        "retiring_at" timestamptz,
        "retired_at" timestamptz,
        CONSTRAINT "pk_client_signing_key" PRIMARY KEY ("id"),
        CONSTRAINT "uq_client_signing_key_kid" UNIQUE ("kid"),
        CONSTRAINT "ck_client_signing_key_private" CHECK (("state" = 'retired') = ("private_key_enc" IS NULL)),
        CONSTRAINT "ck_client_signing_key_transitions" CHECK (
              ("state" NOT IN ('active', 'retiring') OR "activated_at" IS NOT NULL)
          AND ("state" <> 'retiring' OR "retiring_at" IS NOT NULL)
          AND ("state" <> 'retired' OR "retired_at" IS NOT NULL))
      )`);
    await q.query(
      `CREATE UNIQUE INDEX "uq_client_signing_key_active_alg" ON "client_signing_key" ("alg") WHERE "state" = 'active'`,
    );
    await q.query(
      `CREATE UNIQUE INDEX "uq_client_signing_key_next_alg" ON "client_signing_key" ("alg") WHERE "state" = 'next'`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "client_signing_key"`);
  }
}
