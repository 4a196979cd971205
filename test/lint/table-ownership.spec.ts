import { RuleTester } from 'eslint';
import tseslint from 'typescript-eslint';
import { TABLE_OWNERS, tableOwnership, UNOWNED_TABLES } from '../../eslint/table-ownership.mjs';

const ruleTester = new RuleTester({ languageOptions: { parser: tseslint.parser } });

const SERVICE = 'src/connection-health/notifications.service.ts';
const READ_MODEL = 'src/connection-health/notifications.read-model.ts';

function foreign(table: string, owner: string, module = 'connection-health') {
  return { messageId: 'foreign', data: { module, table, owner } };
}
function readModelWrite(table: string, owner: string, module = 'connection-health') {
  return { messageId: 'readModelWrite', data: { module, table, owner } };
}

describe('TABLE_OWNERS', () => {
  it('gives every table one owner, and none to TypeORM bookkeeping', () => {
    const tables = Object.values(TABLE_OWNERS).flat();
    expect(new Set(tables).size).toBe(tables.length);
    expect(tables.filter((t) => UNOWNED_TABLES.includes(t))).toEqual([]);
    expect(TABLE_OWNERS.connections).toEqual(['epic_credential', 'organization_connection']);
  });
});

ruleTester.run('local/table-ownership', tableOwnership, {
  valid: [
    // A module's own tables.
    {
      filename: SERVICE,
      code: "db.query('SELECT * FROM notification n LEFT JOIN notification_read r ON r.notification_id = n.id');",
    },
    { filename: SERVICE, code: "db.query('DELETE FROM scheduled_run WHERE started_at < $1');" },
    { filename: 'src/users/users.service.ts', code: "db.query('DELETE FROM user_session WHERE sid <> $1');" },
    {
      filename: 'src/connections/token-store.service.ts',
      code: "db.query('UPDATE epic_credential SET version = version + 1 FROM organization_connection oc');",
    },
    // A read model reads any module's tables, quoted or not.
    {
      filename: READ_MODEL,
      code: 'db.query(`SELECT o.name FROM "organization" o JOIN epic_credential c ON c.organization_id = o.id`);',
    },
    // Only names in the map count: CTEs, aliases, functions, unknown tables, English prose.
    {
      filename: SERVICE,
      code: "db.query('WITH due AS (SELECT 1) SELECT * FROM due JOIN unnest($1::uuid[]) AS ids(id) ON true');",
    },
    { filename: SERVICE, code: "throw new Error('Sign in from the page you came from');" },
    {
      filename: SERVICE,
      code: "db.query('SELECT * FROM migrations'); db.query('SELECT * FROM typeorm_metadata');",
    },
    // A column, not a table; a table name with no keyword before it; a longer name.
    { filename: SERVICE, code: "db.query('SELECT extract(epoch FROM organization.created_at)');" },
    { filename: SERVICE, code: "const options = { tableName: 'organization' };" },
    { filename: SERVICE, code: "db.query('SELECT * FROM organization_archive');" },
    // Not a feature module, or not code the rule reads.
    { filename: 'src/cli.ts', code: "db.query('SELECT id FROM organization WHERE slug = $1');" },
    { filename: 'src/database/data-source.ts', code: "db.query('TRUNCATE TABLE organization');" },
    {
      filename: 'src/connection-health/x.spec.ts',
      code: "db.query('INSERT INTO organization DEFAULT VALUES');",
    },
    { filename: 'test/e2e/x.e2e-spec.ts', code: "db.query('DELETE FROM organization');" },
    { filename: 'migrations/1-init.ts', code: "db.query('ALTER TABLE organization ADD x int');" },
    // Comments are not SQL.
    { filename: SERVICE, code: '// FROM organization o JOIN epic_credential c\nconst x = 1;' },
  ],
  invalid: [
    // Another module's table in a service: read, join, write.
    {
      filename: SERVICE,
      code: "db.query('SELECT 1 FROM organization WHERE id = $1 FOR UPDATE');",
      errors: [{ ...foreign('organization', 'organizations'), line: 1, column: 20, endColumn: 37 }],
    },
    {
      filename: SERVICE,
      code: 'db.query(`SELECT n.id\n  FROM notification n\n  JOIN organization o ON o.id = n.organization_id`);',
      errors: [{ ...foreign('organization', 'organizations'), line: 3, column: 3 }],
    },
    {
      filename: SERVICE,
      code: "db.query('UPDATE organization SET notified_state = $2 WHERE id = $1');",
      errors: [foreign('organization', 'organizations')],
    },
    {
      filename: 'src/epic-auth/token-refresh.service.ts',
      code: "db.query('insert into epic_credential(id) values ($1)');",
      errors: [foreign('epic_credential', 'connections', 'epic-auth')],
    },
    {
      filename: 'src/epic-auth/authorization.service.ts',
      code: "db.query('DELETE FROM app_user WHERE id = $1');",
      errors: [foreign('app_user', 'users', 'epic-auth')],
    },
    // Quoted and schema-qualified identifiers.
    {
      filename: SERVICE,
      code: 'db.query(\'SELECT * FROM "organization" o JOIN public."epic_credential" c ON true\');',
      errors: [foreign('organization', 'organizations'), foreign('epic_credential', 'connections')],
    },
    // Template literals: each quasi is read, the interpolated expressions are not.
    {
      filename: SERVICE,
      code: 'db.query(`SELECT * FROM ${table} t JOIN organization o ON o.id = t.organization_id LIMIT ${n}`);',
      errors: [foreign('organization', 'organizations')],
    },
    {
      filename: SERVICE,
      code: 'db.query(`DELETE FROM notification WHERE id = ${id} AND organization_id IN (SELECT id FROM organization)`);',
      errors: [foreign('organization', 'organizations')],
    },
    // TRUNCATE and ALTER TABLE are writes.
    {
      filename: SERVICE,
      code: "db.query('TRUNCATE TABLE app_user'); db.query('ALTER TABLE client_signing_key ADD x int');",
      errors: [foreign('app_user', 'users'), foreign('client_signing_key', 'client-keys')],
    },
    // A string with escapes is still read; the report then covers the whole literal.
    {
      filename: SERVICE,
      code: 'db.query("SELECT *\\n  FROM \\"audit_event\\"");',
      errors: [{ ...foreign('audit_event', 'audit'), line: 1, column: 10 }],
    },
    // Modules that own no table, and English prose that names a table after a keyword.
    {
      filename: 'src/admin-ui/admin-ui.controller.ts',
      code: "db.query('SELECT count(*) FROM notification_outbox');",
      errors: [foreign('notification_outbox', 'connection-health', 'admin-ui')],
    },
    {
      filename: 'src/users/users.service.ts',
      code: "throw new Error('The user was removed from organization settings');",
      errors: [foreign('organization', 'organizations', 'users')],
    },
    // A read model reads, but does not write, another module's tables.
    {
      filename: READ_MODEL,
      code: "db.query('UPDATE organization SET notified_state = $1');",
      errors: [readModelWrite('organization', 'organizations')],
    },
    {
      filename: READ_MODEL,
      code: 'db.query(`INSERT INTO "epic_credential" (id) SELECT id FROM organization`);',
      errors: [readModelWrite('epic_credential', 'connections')],
    },
    {
      filename: READ_MODEL,
      code: "db.query('DELETE FROM app_user WHERE id IN (SELECT user_id FROM notification_read)');",
      errors: [readModelWrite('app_user', 'users')],
    },
  ],
});
