import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The name an administrator gives the organization's FHIR server ("Cerner Millennium", "SMART Health
 * IT"), which the pages and messages use instead of "Epic" or "the EHR" (server-label.ts). Null: none
 * given, the name is decided from the base URL.
 */
export class AddFhirServerName1764010000000 implements MigrationInterface {
  name = 'AddFhirServerName1764010000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "organization" ADD "fhir_server_name" varchar(100)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "organization" DROP COLUMN "fhir_server_name"`);
  }
}
