import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Every pending authorization keeps the SHA-256 of its starting browser's binding cookie; a callback
 * from another browser cannot consume it (RFC 9700 §4.7.1). Authorizations pending at upgrade have
 * none and must be started again.
 */
export class BindAuthorizationsToBrowser1764060000000 implements MigrationInterface {
  name = 'BindAuthorizationsToBrowser1764060000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "pending_authorization" ADD "browser_binding_hash" varchar(64)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "pending_authorization" DROP COLUMN "browser_binding_hash"`);
  }
}
