import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Login throttling counters shared by every instance (a per-process counter lets N instances take
 * N times the limit). One row per throttled key (throttler name and client IP, hashed by the
 * guard); rows whose window and block ended are swept.
 */
export class CreateThrottleCounter1763980000000 implements MigrationInterface {
  name = 'CreateThrottleCounter1763980000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "throttle_counter" (
        "key" varchar(200) NOT NULL,
        "hits" int NOT NULL,
        "window_ends_at" timestamptz NOT NULL,
        "blocked_until" timestamptz,
        CONSTRAINT "pk_throttle_counter" PRIMARY KEY ("key")
      )`);
    await q.query(
      `CREATE INDEX "ix_throttle_counter_window_ends_at" ON "throttle_counter" ("window_ends_at")`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "throttle_counter"`);
  }
}
