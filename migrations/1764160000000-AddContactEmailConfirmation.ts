import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Double opt-in for the contact addresses providers and patients enter (src/users/README.md):
 * `app_user.contact_email_confirmed_at` is set when the address is confirmed (the link emailed to
 * it was opened) or came from a verified id_token claim; until then the address is not emailed.
 * Addresses already claimed from an id_token count as confirmed.
 */
export class AddContactEmailConfirmation1764160000000 implements MigrationInterface {
  name = 'AddContactEmailConfirmation1764160000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "app_user" ADD "contact_email_confirmed_at" timestamptz`);
    await q.query(
      `UPDATE "app_user" SET "contact_email_confirmed_at" = now()
        WHERE "contact_email" IS NOT NULL AND "contact_email_source" = 'id_token'`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "app_user" DROP COLUMN "contact_email_confirmed_at"`);
  }
}
