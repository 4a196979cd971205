// The local/table-ownership rule: SQL in one feature module must not touch another module's tables.
// Plain JavaScript (eslint.config.mjs imports it as is; table-ownership.d.mts types it for the spec).
import path from 'node:path';

/**
 * Which feature module (a folder under src/) owns which table: the one place that says so.
 * Only that module's SQL may name the table; others call the owner's service, or read it in a
 * `*.read-model.ts` file. Add a table here when its migration creates it.
 */
export const TABLE_OWNERS = {
  organizations: ['organization'],
  // user_session: Auth's session store writes it through connect-pg-simple, not through SQL of
  // ours; Users deletes a user's other sessions, so the SQL that names it lives in Users.
  users: ['app_user', 'throttle_counter', 'user_session'],
  audit: ['audit_event'],
  'client-keys': ['client_signing_key'],
  'epic-auth': ['pending_authorization'],
  connections: ['epic_credential', 'organization_connection'],
  'connection-health': [
    'notification',
    'notification_read',
    'notification_outbox',
    'notification_recipient',
    'scheduled_run',
    'user_connection_notice',
  ],
  // src/mail: who wants which email (preferences) and the unsubscribe links already used.
  mail: ['mail_preference', 'mail_unsubscribe'],
  'api-keys': ['api_key'],
  // src/gateway/throttle: the FHIR gateway's per-organization throttle; src/gateway/traffic: its access
  // records; gateway_bulk_job: which API key started which Bulk Data export.
  gateway: ['gateway_budget', 'gateway_limits', 'gateway_access', 'gateway_bulk_job'],
};

/** TypeORM's bookkeeping: nobody's (src/database and the CLI only), so the rule ignores them. */
export const UNOWNED_TABLES = ['typeorm_migrations', 'migrations', 'typeorm_metadata'];

const OWNER_OF = new Map(
  Object.entries(TABLE_OWNERS).flatMap(([module, tables]) => tables.map((table) => [table, module])),
);

/**
 * A table reference: a keyword, then an identifier, quoted or not, maybe `public.`-qualified.
 *   reads:  FROM x, JOIN x (DELETE FROM is tried first, so its FROM is not a read)
 *   writes: UPDATE [ONLY] x, INTO x (INSERT, MERGE), DELETE FROM x, TRUNCATE x, any `TABLE x`
 *           (ALTER/DROP/LOCK/TRUNCATE TABLE; schema changes belong in migrations/ anyway)
 * Keywords are case-insensitive; `x.` (a column such as `EXTRACT(EPOCH FROM x.created_at)`) is not
 * a table. Not seen: tables after a comma in `FROM a, b`, `DELETE ... USING x`, names built at run
 * time (`FROM ${table}`), a keyword and its table in different literals, and ORM calls (entities
 * stay inside their module, which local/module-boundaries enforces).
 * English in string literals matches too, but only a word that is exactly a mapped table counts:
 * "Sign in from the page" is fine, "removed from organization" is reported. That is rare; rephrase
 * the message rather than weaken the rule.
 */
const TABLE_REFERENCE =
  /\b(delete\s+from|from|join|update(?:\s+only)?|into|truncate(?:\s+table)?|table)\s+(?:(?:"public"|public)\s*\.\s*)?(?:"([^"]+)"|([a-z_][a-z0-9_$]*))(?![\w$]|\s*\.)/gi;
const READ_KEYWORDS = new Set(['from', 'join']);

/**
 * The `src/<module>/` a file belongs to, or undefined when the rule does not apply to it. Paths are
 * taken relative to ESLint's cwd, the repository root when `npm run check` runs.
 */
function moduleOf(context) {
  const file = path.relative(context.cwd, context.filename).replace(/\\/g, '/');
  const match = /^src\/([^/]+)\/(.+)$/.exec(file);
  if (!match) return undefined; // outside src/, or directly in src/ (cli.ts, main.ts)
  const [, module, rest] = match;
  if (module === 'database') return undefined; // the DataSource, migrations runner, locks
  if (/\.(e2e-)?spec\.ts$/.test(rest)) return undefined; // tests set up any table they need
  return { module, readModel: /\.read-model\.ts$/.test(rest) };
}

/** @type {import('eslint').Rule.RuleModule} */
export const tableOwnership = {
  meta: {
    type: 'problem',
    docs: { description: "SQL in one feature module does not touch another module's tables." },
    schema: [],
    messages: {
      foreign:
        "SQL in {{module}} touches {{table}}, owned by {{owner}}: call that module's service (or, for a read-only join the consoles need, use a file named *.read-model.ts).",
      readModelWrite:
        "SQL in {{module}} writes {{table}}, owned by {{owner}}: a read model only reads; call that module's service to change it.",
    },
  },
  create(context) {
    const scope = moduleOf(context);
    if (!scope) return {};
    const { sourceCode } = context;

    /**
     * Reports the foreign tables in `text`. `start` is where `text` begins in the source when it is
     * the literal's own source text (no escapes), so a report points at `KEYWORD table`; otherwise
     * the report covers the whole literal.
     */
    function check(node, text, start) {
      for (const match of text.matchAll(TABLE_REFERENCE)) {
        const keyword = match[1].toLowerCase().replace(/\s+/g, ' ');
        // Unquoted names fold to lower case, as Postgres does; quoted ones are taken as written.
        const table = match[2] ?? match[3].toLowerCase();
        const owner = OWNER_OF.get(table);
        if (!owner || owner === scope.module) continue;
        const read = READ_KEYWORDS.has(keyword);
        if (read && scope.readModel) continue;
        const where =
          start === undefined
            ? { node }
            : {
                loc: {
                  start: sourceCode.getLocFromIndex(start + match.index),
                  end: sourceCode.getLocFromIndex(start + match.index + match[0].length),
                },
              };
        context.report({
          ...where,
          messageId: scope.readModel ? 'readModelWrite' : 'foreign',
          data: { module: scope.module, table, owner },
        });
      }
    }

    /** Where `text` begins in the source, if it is the literal's own source text (no escapes). */
    function locate(node, text) {
      // A string's range starts at its quote; a quasi's at the backtick or `}` before its text.
      const start = node.range[0] + 1;
      return sourceCode.text.startsWith(text, start) ? start : undefined;
    }

    return {
      Literal(node) {
        if (typeof node.value === 'string') check(node, node.value, locate(node, node.value));
      },
      // Each quasi on its own: the text between `${…}` parts is scanned, the expressions are not.
      TemplateElement(node) {
        const text = node.value.cooked ?? node.value.raw;
        check(node, text, locate(node, text));
      },
    };
  },
};
