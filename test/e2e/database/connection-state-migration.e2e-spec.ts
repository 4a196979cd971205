import { randomBytes } from 'node:crypto';

import { DataSource } from 'typeorm';

import { MIGRATIONS } from 'migrations/index';
import { dataSourceOptions } from 'src/database/data-source';

import { urlFor, withAdmin } from 'test/setup/database';

const MOVE = 'MoveConnectionStateToConnections1764080000000';

/**
 * The move of the connection's state from `organization` to `organization_connection` keeps every
 * value: a database filled by the schema before it (organizations in every situation, organization
 * and user credentials) is migrated up, checked, migrated down, and checked again.
 */
describe('migration: connection state moves to the Connections module', () => {
  let ds: DataSource;
  const base = 'https://fhir.example.org/api/FHIR/R4';
  const at = (iso: string) => new Date(iso);

  beforeAll(async () => {
    const name = `${process.env.TEST_RUN_ID}_movemig_${randomBytes(3).toString('hex')}`;
    await withAdmin((admin) => admin.query(`CREATE DATABASE "${name}"`));
    ds = new DataSource(dataSourceOptions(urlFor(name), 1));
    await ds.initialize();
    // Every migration before the move.
    const index = MIGRATIONS.findIndex((M) => new M().name === MOVE);
    expect(index).toBeGreaterThan(0);
    await ds.runMigrations();
    for (let i = MIGRATIONS.length; i > index; i--) await ds.undoLastMigration();
    const [{ n }] = await ds.query<{ n: number }[]>('SELECT count(*)::int AS n FROM typeorm_migrations');
    expect(n).toBe(index);
  });
  afterAll(() => ds.destroy());

  /** Organizations as the old schema held them: connected, failing, expired, disconnected, never. */
  async function fill(): Promise<Record<string, string>> {
    const ids: Record<string, string> = {};
    const org = async (slug: string, columns: Record<string, unknown>) => {
      const names = ['name', 'slug', 'epic_client_id', 'fhir_base_url', ...Object.keys(columns)];
      const values = [slug, slug, 'client', base, ...Object.values(columns)];
      const [row] = await ds.query<{ id: string }[]>(
        `INSERT INTO organization (${names.join(', ')}) VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')})
         RETURNING id`,
        values,
      );
      ids[slug] = row.id;
    };
    await org('connected', {
      is_connected: true,
      token_expiry: at('2026-12-07T10:00:00Z'),
      last_sync: at('2026-12-07T09:00:00Z'),
      notified_state: 'connected',
      notified_state_at: at('2026-12-07T08:00:00Z'),
    });
    await org('failing', {
      is_connected: true,
      token_expiry: at('2026-12-07T10:00:00Z'),
      last_error: 'Epic did not answer in time.',
      last_error_at: at('2026-12-07T07:00:00Z'),
      notified_state: 'error',
      notified_state_at: at('2026-12-07T07:30:00Z'),
    });
    await org('expired', {
      is_connected: false,
      token_expiry: at('2026-12-01T10:00:00Z'),
      last_error: 'Epic refused the refresh token.',
      last_error_at: at('2026-12-01T10:00:00Z'),
      notified_state: 'expired',
      notified_state_at: at('2026-12-01T10:05:00Z'),
    });
    await org('never', {});
    for (const slug of ['connected', 'failing']) {
      await ds.query(
        `INSERT INTO epic_credential (organization_id, purpose, access_token_enc, expires_at)
         VALUES ($1, 'organization', 'v1.k.x', '2026-12-07T10:00:00Z')`,
        [ids[slug]],
      );
    }
    const [user] = await ds.query<{ id: string }[]>(
      `INSERT INTO app_user (email, role, organization_id, fhir_user) VALUES ('p@example.org', 'patient', $1, 'Patient/1')
       RETURNING id`,
      [ids.connected],
    );
    await ds.query(
      `INSERT INTO epic_credential (organization_id, user_id, purpose, access_token_enc, expires_at, last_error, last_sync)
       VALUES ($1, $2, 'patient', 'v1.k.y', '2026-12-07T10:00:00Z', 'The patient revoked access.', '2026-12-06T10:00:00Z')`,
      [ids.connected, user.id],
    );
    return ids;
  }

  const COLUMNS = `is_connected, token_expiry, last_sync, last_error, last_error_at, notified_state, notified_state_at`;

  it('copies every organization connection fact, and back down again', async () => {
    const ids = await fill();
    const before = await ds.query<Record<string, unknown>[]>(
      `SELECT id, ${COLUMNS} FROM organization ORDER BY slug`,
    );

    await ds.runMigrations();
    const moved = await ds.query<Record<string, unknown>[]>(
      `SELECT o.id, ${COLUMNS.split(', ')
        .map((c) => (c === 'is_connected' ? 'COALESCE(s.is_connected, false) AS is_connected' : `s.${c}`))
        .join(', ')}
         FROM organization o LEFT JOIN organization_connection s ON s.organization_id = o.id ORDER BY o.slug`,
    );
    expect(moved).toEqual(before);
    // Only organizations that had any state get a row; the organization table has none of it left.
    const [{ n }] = await ds.query<{ n: number }[]>('SELECT count(*)::int AS n FROM organization_connection');
    expect(n).toBe(3);
    const left = await ds.query<{ column_name: string }[]>(
      `SELECT column_name FROM information_schema.columns
        WHERE table_name = 'organization' AND column_name = ANY($1::text[])`,
      [COLUMNS.split(', ')],
    );
    expect(left).toEqual([]);
    // Each credential now names the FHIR base its tokens were issued for; users' state stays theirs.
    const credentials = await ds.query<{ fhir_base_url: string; last_error: string | null }[]>(
      `SELECT fhir_base_url, last_error FROM epic_credential ORDER BY user_id NULLS FIRST, organization_id`,
    );
    expect(credentials.map((c) => c.fhir_base_url)).toEqual([base, base, base]);
    expect(credentials.map((c) => c.last_error)).toContain('The patient revoked access.');
    expect(ids.never).toBeDefined();

    // Down through the move (and the migrations that came after it).
    const index = MIGRATIONS.findIndex((M) => new M().name === MOVE);
    for (let i = MIGRATIONS.length; i > index; i--) await ds.undoLastMigration();
    expect(await ds.query(`SELECT id, ${COLUMNS} FROM organization ORDER BY slug`)).toEqual(before);
    const [{ exists }] = await ds.query<{ exists: boolean }[]>(
      `SELECT to_regclass('organization_connection') IS NOT NULL AS exists`,
    );
    expect(exists).toBe(false);
  });
});
