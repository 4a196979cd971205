import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * API keys for the FHIR gateway (src/api-keys): service credentials of one organization, deleted
 * with it. Only the SHA-256 of a key's secret is stored (64 hex digits); `key_id` is the public
 * part of the key and finds its row. `resource_types` NULL allows every resource type; an empty
 * list is refused (it would allow nothing).
 */
export class CreateApiKeys1764090000000 implements MigrationInterface {
  name = 'CreateApiKeys1764090000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "api_key" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "organization_id" uuid NOT NULL,
        "key_id" text NOT NULL,
        "secret_hash" text NOT NULL,
        "name" varchar(100) NOT NULL,
        "access" text NOT NULL,
        "resource_types" text[],
        "user_connections" boolean NOT NULL DEFAULT false,
        "expires_at" timestamptz,
        "revoked_at" timestamptz,
        "last_used_at" timestamptz,
        "created_by" uuid,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_api_key" PRIMARY KEY ("id"),
        CONSTRAINT "uq_api_key_key_id" UNIQUE ("key_id"),
        CONSTRAINT "fk_api_key_organization" FOREIGN KEY ("organization_id")
          REFERENCES "organization" ("id") ON DELETE CASCADE,
        CONSTRAINT "fk_api_key_created_by" FOREIGN KEY ("created_by")
          REFERENCES "app_user" ("id") ON DELETE SET NULL,
        CONSTRAINT "ck_api_key_key_id" CHECK ("key_id" ~ '^[a-z0-9]{12}$'),
        CONSTRAINT "ck_api_key_secret_hash" CHECK ("secret_hash" ~ '^[0-9a-f]{64}$'),
        CONSTRAINT "ck_api_key_access" CHECK ("access" IN ('read', 'read_write')),
        CONSTRAINT "ck_api_key_resource_types"
          CHECK ("resource_types" IS NULL OR cardinality("resource_types") BETWEEN 1 AND 100)
      )`);
    // The keys page and the JSON API list an organization's keys, newest first.
    await q.query(`CREATE INDEX "ix_api_key_organization" ON "api_key" ("organization_id", "created_at")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "api_key"`);
  }
}
