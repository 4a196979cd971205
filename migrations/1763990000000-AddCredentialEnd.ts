import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A user's credential whose grant Epic refused for good is kept, without its tokens, with when and
 * why it ended: the user's page can then say what happened instead of "nothing connected". An
 * organization's own credential is still deleted (the organization keeps the reason).
 */
export class AddCredentialEnd1763990000000 implements MigrationInterface {
  name = 'AddCredentialEnd1763990000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "epic_credential" ADD "ended_at" timestamptz`);
    await q.query(`ALTER TABLE "epic_credential" ALTER COLUMN "access_token_enc" DROP NOT NULL`);
    await q.query(
      `ALTER TABLE "epic_credential" ADD CONSTRAINT "ck_epic_credential_ended"
         CHECK (("ended_at" IS NULL AND "access_token_enc" IS NOT NULL)
             OR ("ended_at" IS NOT NULL AND "access_token_enc" IS NULL AND "refresh_token_enc" IS NULL
                 AND "user_id" IS NOT NULL))`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM "epic_credential" WHERE "ended_at" IS NOT NULL`);
    await q.query(`ALTER TABLE "epic_credential" DROP CONSTRAINT "ck_epic_credential_ended"`);
    await q.query(`ALTER TABLE "epic_credential" ALTER COLUMN "access_token_enc" SET NOT NULL`);
    await q.query(`ALTER TABLE "epic_credential" DROP COLUMN "ended_at"`);
  }
}
