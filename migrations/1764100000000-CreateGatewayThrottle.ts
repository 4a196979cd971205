import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The FHIR gateway's per-organization throttle, shared by every instance
 * (src/gateway/throttle/README.md); both tables are deleted with their organization.
 *
 * `gateway_limits`: a root admin's override of the rate and concurrency limits (NULL: the default
 * from the environment); a row with neither is not kept.
 *
 * `gateway_budget`: one row per organization that used the gateway, leased by instances in batches
 * (never a write per request). `tokens`/`refilled_at` are a token bucket (NULL tokens: full; a
 * `refilled_at` in the future keeps it empty until then, after an upstream 429); `granted` is what
 * the last lease took (read back by that lease's RETURNING); `paused_until` is the end of the pause
 * an upstream 429 asked for; `slot_leases` maps each instance to the concurrency slots it leases.
 */
export class CreateGatewayThrottle1764100000000 implements MigrationInterface {
  name = 'CreateGatewayThrottle1764100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "gateway_limits" (
        "organization_id" uuid NOT NULL,
        "rate_per_second" int,
        "concurrency" int,
        "updated_by" uuid,
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_gateway_limits" PRIMARY KEY ("organization_id"),
        CONSTRAINT "fk_gateway_limits_organization" FOREIGN KEY ("organization_id")
          REFERENCES "organization" ("id") ON DELETE CASCADE,
        CONSTRAINT "fk_gateway_limits_updated_by" FOREIGN KEY ("updated_by")
          REFERENCES "app_user" ("id") ON DELETE SET NULL,
        CONSTRAINT "ck_gateway_limits_rate" CHECK ("rate_per_second" BETWEEN 1 AND 10000),
        CONSTRAINT "ck_gateway_limits_concurrency" CHECK ("concurrency" BETWEEN 1 AND 1000),
        CONSTRAINT "ck_gateway_limits_some" CHECK ("rate_per_second" IS NOT NULL OR "concurrency" IS NOT NULL)
      )`);
    await q.query(`
      CREATE TABLE "gateway_budget" (
        "organization_id" uuid NOT NULL,
        "tokens" double precision,
        "refilled_at" timestamptz NOT NULL DEFAULT now(),
        "granted" int NOT NULL DEFAULT 0,
        "paused_until" timestamptz,
        "slot_leases" jsonb NOT NULL DEFAULT '{}'::jsonb,
        CONSTRAINT "pk_gateway_budget" PRIMARY KEY ("organization_id"),
        CONSTRAINT "fk_gateway_budget_organization" FOREIGN KEY ("organization_id")
          REFERENCES "organization" ("id") ON DELETE CASCADE
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "gateway_budget"`);
    await q.query(`DROP TABLE "gateway_limits"`);
  }
}
