import { Client } from 'pg';

import { connectionStateSql } from 'src/connections/connection-state';

import { NOW, STATE_CASES, WARNING_MS } from 'test/fixtures/connection-state-cases';
import { freshDatabaseUrl } from 'test/setup/database';

type GrantType = 'authorization_code' | 'client_credentials';

/**
 * Every case, and every renewable one a second time as a backend-service credential: renewable by
 * its client_credentials grant instead of a refresh token (the generated column `renewable`).
 */
function cases(): [string, (typeof STATE_CASES)[number], GrantType][] {
  return STATE_CASES.flatMap((c, index) => {
    const variants: [string, (typeof STATE_CASES)[number], GrantType][] = [
      [String(index), c, 'authorization_code'],
    ];
    if (c[1].credential?.refreshable) variants.push([`${index} backend`, c, 'client_credentials']);
    return variants;
  });
}

/**
 * The SQL form of the state model must agree with deriveConnectionState on every case: each
 * case becomes an organization (and credential) in a real database and is evaluated there.
 */
describe('connectionStateSql agrees with deriveConnectionState', () => {
  let db: Client;

  beforeAll(async () => {
    db = new Client({ connectionString: await freshDatabaseUrl() });
    await db.connect();
    for (const [index, [, facts], grantType] of cases()) {
      const { rows } = await db.query<{ id: string }>(
        `INSERT INTO organization (name, slug, epic_client_id, fhir_base_url)
         VALUES ($1, $2, $3, $4) RETURNING id`,
        [
          `Case ${index}`,
          `case-${index}`.replace(' ', '-'),
          facts.configured ? 'client' : null,
          facts.configured ? 'https://fhir.example.org/R4' : null,
        ],
      );
      // Never-connected organizations have no connection row: the SQL must read that as "no facts".
      if (facts.lastError !== null || facts.tokenExpiry !== null) {
        await db.query(
          `INSERT INTO organization_connection (organization_id, last_error, token_expiry) VALUES ($1, $2, $3)`,
          [rows[0].id, facts.lastError, facts.tokenExpiry],
        );
      }
      if (facts.credential) {
        await db.query(
          `INSERT INTO epic_credential (organization_id, purpose, access_token_enc, refresh_token_enc, expires_at, refresh_expires_at, grant_type)
           VALUES ($1, 'organization', 'x', $2, $3, $4, $5)`,
          [
            rows[0].id,
            facts.credential.refreshable && grantType === 'authorization_code' ? 'y' : null,
            facts.credential.expiresAt,
            facts.credential.refreshExpiresAt,
            grantType,
          ],
        );
      }
    }
  });
  afterAll(() => db.end());

  it('on the whole table of cases', async () => {
    const { rows } = await db.query<{ name: string; state: string }>(
      `SELECT o.name, ${connectionStateSql('$1', '$2')} AS state
         FROM organization o
         LEFT JOIN organization_connection s ON s.organization_id = o.id
         LEFT JOIN epic_credential c ON c.organization_id = o.id AND c.user_id IS NULL
        ORDER BY o.name`,
      [NOW, new Date(NOW.getTime() + WARNING_MS)],
    );
    const byName = new Map(rows.map((r) => [r.name, r.state]));
    for (const [index, [description, , expected]] of cases()) {
      expect({ description, state: byName.get(`Case ${index}`) }).toEqual({ description, state: expected });
    }
  });
});
