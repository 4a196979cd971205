import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Partial indexes for the scheduled connection check's second look: organizations whose admins
 * were told of a problem, and organizations with a recorded failure (both few among many).
 */
export class IndexConnectionFlags1763920000000 implements MigrationInterface {
  name = 'IndexConnectionFlags1763920000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX "ix_organization_notified_attention" ON "organization" ("id")
         WHERE "notified_state" IN ('expiring', 'expired', 'error')`,
    );
    await q.query(
      `CREATE INDEX "ix_organization_last_error" ON "organization" ("id") WHERE "last_error" IS NOT NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX "ix_organization_last_error"`);
    await q.query(`DROP INDEX "ix_organization_notified_attention"`);
  }
}
