import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A refresh lease on each credential: who is renewing it and until when (by the database clock).
 * TokenRefreshService claims it with one short UPDATE, releases the connection, calls Epic, and
 * writes the new tokens back with compare-and-set, so no connection (and no advisory lock's
 * transaction) is held across the call while one refresh per credential stays in flight across
 * instances. A lease left by a crashed instance simply expires.
 */
export class AddRefreshLease1764000000000 implements MigrationInterface {
  name = 'AddRefreshLease1764000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "epic_credential" ADD "refresh_lease_id" uuid`);
    await q.query(`ALTER TABLE "epic_credential" ADD "refresh_lease_until" timestamptz`);
    await q.query(
      `ALTER TABLE "epic_credential" ADD CONSTRAINT "ck_epic_credential_refresh_lease"
         CHECK (("refresh_lease_id" IS NULL) = ("refresh_lease_until" IS NULL))`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "epic_credential" DROP CONSTRAINT "ck_epic_credential_refresh_lease"`);
    await q.query(`ALTER TABLE "epic_credential" DROP COLUMN "refresh_lease_until"`);
    await q.query(`ALTER TABLE "epic_credential" DROP COLUMN "refresh_lease_id"`);
  }
}
