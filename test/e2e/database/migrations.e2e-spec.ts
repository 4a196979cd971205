import { randomBytes } from 'node:crypto';

import { DataSource } from 'typeorm';

import { MIGRATIONS } from 'migrations/index';
import { dataSourceOptions } from 'src/database/data-source';

import { urlFor, withAdmin } from 'test/setup/database';

import { TABLE_OWNERS, UNOWNED_TABLES } from 'test/lint/table-owners';

async function tables(ds: DataSource): Promise<string[]> {
  const rows = await ds.query<{ table_name: string }[]>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`,
  );
  return rows.map((r) => r.table_name);
}

describe('migrations', () => {
  let ds: DataSource;

  beforeAll(async () => {
    const name = `${process.env.TEST_RUN_ID}_mig_${randomBytes(3).toString('hex')}`;
    await withAdmin((admin) => admin.query(`CREATE DATABASE "${name}"`)); // empty, not from the template
    ds = new DataSource(dataSourceOptions(urlFor(name), 1));
    await ds.initialize();
  });
  afterAll(() => ds.destroy());

  it('go up from empty, down to empty, and up again', async () => {
    expect(await tables(ds)).toEqual([]);
    const applied = await ds.runMigrations();
    expect(applied.map((m) => m.name)).toEqual(MIGRATIONS.map((M) => new M().name));
    expect(await tables(ds)).toEqual(
      expect.arrayContaining([
        'organization',
        'app_user',
        'audit_event',
        'user_session',
        'typeorm_migrations',
      ]),
    );

    for (let i = 0; i < MIGRATIONS.length; i++) await ds.undoLastMigration();
    expect(await tables(ds)).toEqual(['typeorm_migrations']);
    const [{ n }] = await ds.query<{ n: number }[]>('SELECT count(*)::int AS n FROM typeorm_migrations');
    expect(n).toBe(0);

    await ds.runMigrations();
    expect(await tables(ds)).toContain('organization');
    expect(await ds.showMigrations()).toBe(false); // nothing pending
  });

  it('every table has an owning module declared for the table-ownership lint rule', async () => {
    const declared = [...Object.values(TABLE_OWNERS).flat(), ...UNOWNED_TABLES];
    expect((await tables(ds)).filter((table) => !declared.includes(table))).toEqual([]);
  });

  it('the schema enforces the rules the code relies on', async () => {
    await expect(
      ds.query(`INSERT INTO app_user (email, role, organization_id) VALUES ('a@b.c', 'org_admin', NULL)`),
    ).rejects.toThrow(/ck_app_user_organization_by_role/);
    await ds.query(`INSERT INTO app_user (email, role) VALUES ('Case@Example.org', 'root_admin')`);
    await expect(
      ds.query(`INSERT INTO app_user (email, role) VALUES ('case@example.ORG', 'root_admin')`),
    ).rejects.toThrow(/uq_app_user_lower_email/);
  });
});
