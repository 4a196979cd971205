import { MigrationInterface, QueryRunner } from 'typeorm';

/** The SMART scope syntax an organization's Epic expects: v1 (`.read`) or v2 (`.rs`, Epic from Aug 2024). */
export class AddScopeSyntax1763930000000 implements MigrationInterface {
  name = 'AddScopeSyntax1763930000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `ALTER TABLE "organization" ADD "epic_scope_syntax" varchar(2) NOT NULL DEFAULT 'v1'
         CONSTRAINT "ck_organization_epic_scope_syntax" CHECK ("epic_scope_syntax" IN ('v1', 'v2'))`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "organization" DROP COLUMN "epic_scope_syntax"`);
  }
}
