import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * User-facing launches: a provider or patient user is identified by the `fhirUser` of a verified
 * id_token within one organization, and their credential keeps its launch context.
 */
export class CreateUserLaunches1763940000000 implements MigrationInterface {
  name = 'CreateUserLaunches1763940000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "app_user" ADD "fhir_user" varchar(500)`);
    await q.query(
      `CREATE UNIQUE INDEX "uq_app_user_organization_fhir_user" ON "app_user" ("organization_id", "fhir_user")
         WHERE "fhir_user" IS NOT NULL`,
    );
    await q.query(`ALTER TABLE "epic_credential" ADD "need_patient_banner" boolean`);
    await q.query(`ALTER TABLE "epic_credential" ADD "smart_style_url" varchar(2048)`);
    await q.query(
      `CREATE INDEX "ix_epic_credential_user" ON "epic_credential" ("user_id") WHERE "user_id" IS NOT NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX "ix_epic_credential_user"`);
    await q.query(`ALTER TABLE "epic_credential" DROP COLUMN "smart_style_url"`);
    await q.query(`ALTER TABLE "epic_credential" DROP COLUMN "need_patient_banner"`);
    await q.query(`DROP INDEX "uq_app_user_organization_fhir_user"`);
    await q.query(`ALTER TABLE "app_user" DROP COLUMN "fhir_user"`);
  }
}
