import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Users' connections that run out or ended (src/connection-health/README.md, "Users' own
 * connections"): the scheduled check finds, each tick,
 *
 * - users' live credentials whose end passed (the access token's when not renewable, the refresh
 *   token's announced end when renewable: the expression is `connectionEnd` in SQL, written exactly
 *   as `TokenStoreService.ranOutUserCredentials` queries it), to mark them ended;
 * - users' credentials that ended in the last day, to record any notice a crash lost.
 *
 * Both partial: healthy organization credentials and long-ended ones are not in the first, live ones
 * not in the second.
 */
export class AddUserCredentialEndIndexes1764150000000 implements MigrationInterface {
  name = 'AddUserCredentialEndIndexes1764150000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX "ix_epic_credential_user_run_out" ON "epic_credential"
         ((CASE WHEN renewable THEN refresh_expires_at ELSE expires_at END), "id")
         WHERE "user_id" IS NOT NULL AND "ended_at" IS NULL`,
    );
    await q.query(
      `CREATE INDEX "ix_epic_credential_user_ended" ON "epic_credential" ("ended_at", "id")
         WHERE "user_id" IS NOT NULL AND "ended_at" IS NOT NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX "ix_epic_credential_user_ended"`);
    await q.query(`DROP INDEX "ix_epic_credential_user_run_out"`);
  }
}
