import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The origin of the token endpoint an organization's client secret is sent to, fixed at its first
 * use after it was typed. Secrets stored before start unbound and are bound at their next use.
 */
export class BindClientSecretToTokenEndpoint1764070000000 implements MigrationInterface {
  name = 'BindClientSecretToTokenEndpoint1764070000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "organization" ADD "client_secret_token_origin" varchar(300)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "organization" DROP COLUMN "client_secret_token_origin"`);
  }
}
