import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Interoperability facts learned per organization and credential.
 *
 * How client_secret_basic encodes the client ID and secret (RFC 6749 §2.3.1 form-urlencoding, or
 * as they are): the admin's choice (`auto` by default) and, with `auto`, what the server accepted.
 */
export class AddInteropFacts1764020000000 implements MigrationInterface {
  name = 'AddInteropFacts1764020000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `ALTER TABLE "organization" ADD "epic_basic_encoding" varchar(20) NOT NULL DEFAULT 'auto'
         CONSTRAINT "ck_organization_epic_basic_encoding" CHECK ("epic_basic_encoding" IN ('auto', 'form-urlencoded', 'raw'))`,
    );
    await q.query(
      `ALTER TABLE "organization" ADD "epic_basic_encoding_detected" varchar(20)
         CONSTRAINT "ck_organization_epic_basic_encoding_detected" CHECK ("epic_basic_encoding_detected" IN ('form-urlencoded', 'raw'))`,
    );
    // When the access token was obtained, so the refresh margin can be capped at half its lifetime.
    await q.query(`ALTER TABLE "epic_credential" ADD "issued_at" timestamptz`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "epic_credential" DROP COLUMN "issued_at"`);
    await q.query(`ALTER TABLE "organization" DROP COLUMN "epic_basic_encoding_detected"`);
    await q.query(`ALTER TABLE "organization" DROP COLUMN "epic_basic_encoding"`);
  }
}
