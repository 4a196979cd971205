import { MigrationInterface, QueryRunner } from 'typeorm';

/** A user's own connection (provider or patient launch) records its health like an organization's. */
export class AddUserConnectionState1763950000000 implements MigrationInterface {
  name = 'AddUserConnectionState1763950000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "epic_credential" ADD "last_error" text`);
    await q.query(`ALTER TABLE "epic_credential" ADD "last_error_at" timestamptz`);
    await q.query(`ALTER TABLE "epic_credential" ADD "last_sync" timestamptz`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "epic_credential" DROP COLUMN "last_sync"`);
    await q.query(`ALTER TABLE "epic_credential" DROP COLUMN "last_error_at"`);
    await q.query(`ALTER TABLE "epic_credential" DROP COLUMN "last_error"`);
  }
}
