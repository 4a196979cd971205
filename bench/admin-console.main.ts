import { performance } from 'node:perf_hooks';

import TestAgent from 'supertest/lib/agent';

import type { ConsoleQueryDto } from 'src/admin-ui/dto/console-query.dto';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import {
  ATTENTION_STATES,
  CONNECTION_STATES,
  ConnectionListQuery,
  ConnectionState,
  ConnectionsReadModel,
} from 'src/connections/connections.read-model';
import { Role } from 'src/users/user.types';

import { signIn, TestFactory } from 'test/factories';
import { createTestApp, listenOnLoopback, TestApp } from 'test/setup/test-app';

import { printClosing } from './app-log';
import { BenchDatabase, cleanupOnce, closeAll, createBenchDatabase, printEnvironment } from './bench-db';
import { captureQueries, explainPlan, SentQuery } from './explain';
import { compare, count, LoadResult, ms, percentile, table, Task } from './load';

/** Loaded one after the other: the second load adds to the first. */
const SIZES = [10_000, 100_000];
/** Timed calls of each measure per size, one per round; warm-up calls before them. */
const RUNS = 20;
const WARMUP = 3;
/** The console's page size (PAGE_SIZE in admin-ui.controller.ts; the HTTP check confirms it). */
const PAGE_SIZE = 50;
/** The hand measurement this bench replaces: the page query at 10,000 organizations. */
const HAND_MEASURED_MS = 13;

/**
 * Organization names are "<place> <kind> <n>"; the search looks for one place, which 1 in
 * PLACES.length names contain (13 is coprime with the 100 of MIX, so every state is among them).
 */
const PLACES = [
  'Northside',
  'Riverside',
  'Lakeview',
  'Summit',
  'Valley',
  'Harbor',
  'Prairie',
  'Cedar',
  'Maple',
  'Granite',
  'Bayfront',
  'Highland',
  'Meadow',
];
const KINDS = ['Health', 'Clinic', 'Medical Center', 'Hospital', 'Family Practice'];
const SEARCH = 'riverside';

/** What a loaded row looks like; `connectionStateSql` must derive `state` from it. */
type Shape =
  | 'not_configured'
  | 'not_connected'
  | 'expired_token'
  | 'expired_cleared'
  | 'error'
  | 'expiring'
  | 'connected';

/** Per 100 organizations (by n % 100, in this order), the shape loaded and the state expected. */
const MIX: { shape: Shape; per100: number; state: ConnectionState }[] = [
  { shape: 'not_configured', per100: 2, state: ConnectionState.NotConfigured },
  { shape: 'not_connected', per100: 4, state: ConnectionState.NotConnected },
  { shape: 'expired_token', per100: 1, state: ConnectionState.Expired },
  { shape: 'expired_cleared', per100: 1, state: ConnectionState.Expired },
  { shape: 'error', per100: 2, state: ConnectionState.Error },
  { shape: 'expiring', per100: 3, state: ConnectionState.Expiring },
  { shape: 'connected', per100: 87, state: ConnectionState.Connected },
];

type MeasureId =
  | 'select1'
  | 'counts'
  | 'first'
  | 'attention'
  | 'search'
  | 'deep'
  | 'page'
  | 'live'
  | 'liveAnonymous'
  | 'http';

/** The rows of the table, in order; `base` is what the ratio is taken against. */
const MEASURES: { id: MeasureId; label: string; base: 'select1' | 'live' }[] = [
  { id: 'select1', label: 'SELECT 1 (query baseline)', base: 'select1' },
  { id: 'counts', label: 'counts(now)', base: 'select1' },
  { id: 'first', label: 'list: page 1, sort name', base: 'select1' },
  { id: 'attention', label: 'list: state=attention, page 1', base: 'select1' },
  { id: 'search', label: `list: q=${SEARCH}, page 1`, base: 'select1' },
  {
    id: 'deep',
    label: `list: page ${SIZES.map((size) => count(deepPage(size))).join(' / ')} (middle)`,
    base: 'select1',
  },
  { id: 'page', label: 'counts, then list (the page’s queries)', base: 'select1' },
  { id: 'live', label: 'GET /health/live (HTTP baseline)', base: 'live' },
  { id: 'liveAnonymous', label: 'GET /health/live, no cookie', base: 'live' },
  { id: 'http', label: 'GET /admin', base: 'live' },
];

/** The list measures: the console's query string, as `GET /admin?…` would carry it. */
const LISTS: Partial<Record<MeasureId, (size: number) => Partial<ConsoleQueryDto>>> = {
  first: () => ({}),
  attention: () => ({ state: 'attention' }),
  search: () => ({ q: SEARCH }),
  deep: (size) => ({ page: deepPage(size) }),
};

/** A page in the middle of the list. */
function deepPage(size: number): number {
  return size / 100;
}

interface Loaded {
  size: number;
  loadMs: number;
  vacuumMs: number;
}

interface SizeResult {
  loaded: Loaded;
  results: Record<MeasureId, LoadResult>;
  /** States counted by the app, and any figure that differs from what the data should give. */
  counts: Record<ConnectionState, number>;
  problems: string[];
  plans: string[];
}

/** Runs the benchmark and prints its figures; resolves to the exit code. */
export async function main(): Promise<number> {
  const started = performance.now();
  const db = await createBenchDatabase();
  if (!db) return 1;

  let app: TestApp | undefined;
  const cleanup = cleanupOnce('the app', () => closeAll(db, () => app?.close()));

  try {
    app = await createTestApp({ databaseUrl: db.url });
    const config = app.app.get<AppConfig>(APP_CONFIG);
    printHeader(db, config);

    // The console over real HTTP on loopback (supertest then uses this port instead of one per
    // request), signed in through the login form as a root admin.
    await listenOnLoopback(app);
    const root = await new TestFactory(app).user(Role.RootAdmin, null);
    const { agent } = await signIn(app, root);

    const results: SizeResult[] = [];
    let loadedUpTo = 0;
    for (const size of SIZES) {
      const loaded = await load(app, loadedUpTo + 1, size);
      loadedUpTo = size;
      results.push(await measure(app, agent, loaded));
    }
    printResults(results);
    printClosing(started);
    return 0;
  } finally {
    await cleanup();
  }
}

function printHeader(db: BenchDatabase, config: AppConfig): void {
  printEnvironment(
    'Admin console benchmark (GET /admin, ConnectionsReadModel)',
    db,
    config.env.DATABASE_POOL_SIZE,
  );
  console.log(`  EXPIRY_WARNING_MINUTES=${config.env.EXPIRY_WARNING_MINUTES}, page size ${PAGE_SIZE}`);
  console.log(
    `  Data, per 100 organizations: ${MIX.map((m) => `${m.per100} ${m.shape.replace('_', ' ')}`).join(', ')}.`,
  );
  console.log(
    '  Connected ones have a refresh token (1 in 10 also its end, 30-90 days away); expiring ones none,' +
      '\n  their token ending in 10-20 min; expired: a token without refresh ended 1-60 min ago, or cleared' +
      '\n  tokens with last_error kept; error: a valid token and last_error. Names "<place> <kind> <n>",' +
      `\n  ${PLACES.length} places × ${KINDS.length} kinds; the search matches 1 in ${PLACES.length}.`,
  );
  console.log(
    `  Each size: ${WARMUP} warm-up calls per measure, then ${RUNS} rounds of one call each, in alternating` +
      '\n  order (the baselines interleaved with the rest). One client, one call at a time.',
  );
}

/**
 * Loads organizations `from`..`to` in one statement: the organizations (shape by n % 100, see MIX),
 * the connection row (`organization_connection`) of those that ever had a connection, and the
 * organization credential (with the FHIR base it was issued for) of those that have one,
 * set-based as the connection check bench does. Token columns hold dummy text: the console never reads them. Then VACUUM (ANALYZE),
 * as autovacuum would have left long-lived rows.
 */
async function load(t: TestApp, from: number, to: number): Promise<Loaded> {
  const started = performance.now();
  let upper = 0;
  const shapeSql = `CASE ${MIX.map(({ shape, per100 }) => `WHEN n % 100 < ${(upper += per100)} THEN '${shape}'`).join(' ')} END`;
  await t.dataSource.query(
    `WITH g AS (
       SELECT n, shape,
              CASE shape WHEN 'expired_token' THEN $3::timestamptz - (1 + n % 60) * interval '1 minute'
                         WHEN 'expired_cleared' THEN $3::timestamptz - interval '2 days'
                         WHEN 'expiring' THEN $3::timestamptz + (10 + n % 10) * interval '1 minute'
                         WHEN 'connected' THEN $3::timestamptz + (5 + n % 55) * interval '1 minute'
                         WHEN 'error' THEN $3::timestamptz + (5 + n % 55) * interval '1 minute' END AS expires
         FROM (SELECT n, ${shapeSql} AS shape FROM generate_series($1::int, $2::int) AS n) AS s
     ), o AS (
       INSERT INTO organization (name, slug, epic_environment, epic_client_id, fhir_base_url)
       SELECT format('%s %s %s', ($4::text[])[1 + n % cardinality($4::text[])],
                     ($5::text[])[1 + n / cardinality($4::text[]) % cardinality($5::text[])], n),
              format('bench-%s', n),
              CASE WHEN n % 4 = 0 THEN 'production' ELSE 'sandbox' END,
              CASE WHEN shape <> 'not_configured' THEN format('bench-client-%s', n) END,
              CASE WHEN shape <> 'not_configured' THEN 'https://fhir.bench.invalid/api/FHIR/R4' END
         FROM g
       RETURNING id, slug, fhir_base_url
     ), s AS (
       -- The connection row, only for organizations that ever had a connection (as the migration
       -- copied them): not connected and not configured ones have none.
       INSERT INTO organization_connection (organization_id, is_connected, token_expiry, last_sync,
                                            last_error, last_error_at)
       SELECT o.id,
              g.shape IN ('connected', 'error', 'expiring', 'expired_token'),
              g.expires,
              $3::timestamptz - (g.n % 86400) * interval '1 second',
              CASE g.shape WHEN 'error' THEN 'Epic answered 503 Service Unavailable (bench)'
                           WHEN 'expired_cleared' THEN 'Refresh token rejected: invalid_grant (bench)' END,
              CASE WHEN g.shape IN ('error', 'expired_cleared')
                   THEN $3::timestamptz - (g.n % 3600) * interval '1 second' END
         FROM o JOIN g ON o.slug = format('bench-%s', g.n)
        WHERE g.expires IS NOT NULL
     )
     INSERT INTO epic_credential (organization_id, user_id, purpose, fhir_base_url, access_token_enc,
                                  refresh_token_enc, expires_at, refresh_expires_at, scopes, created_at, updated_at)
     SELECT o.id, NULL, 'organization', o.fhir_base_url, 'bench-dummy-access-token',
            CASE WHEN g.shape IN ('connected', 'error') THEN 'bench-dummy-refresh-token' END,
            g.expires,
            CASE WHEN g.shape = 'connected' AND g.n % 10 = 0
                 THEN $3::timestamptz + (30 + g.n % 60) * interval '1 day' END,
            'openid fhirUser offline_access', $3::timestamptz - interval '1 hour', $3::timestamptz - interval '1 hour'
       FROM o JOIN g ON o.slug = format('bench-%s', g.n)
      WHERE g.shape IN ('connected', 'error', 'expiring', 'expired_token')`,
    [from, to, new Date(), PLACES, KINDS],
  );
  const loadMs = performance.now() - started;
  const vacuumStarted = performance.now();
  await t.dataSource.query('VACUUM (ANALYZE) organization, organization_connection, epic_credential');
  return { size: to, loadMs, vacuumMs: performance.now() - vacuumStarted };
}

/** What organizations 1..size should count per state, and how many names the search matches. */
function expected(size: number): { states: Record<ConnectionState, number>; search: number } {
  const states = Object.fromEntries(CONNECTION_STATES.map((s) => [s, 0])) as Record<ConnectionState, number>;
  let search = 0;
  for (let n = 1; n <= size; n++) {
    let upper = 0;
    states[MIX.find((m) => n % 100 < (upper += m.per100))!.state] += 1;
    if (PLACES[n % PLACES.length].toLowerCase().includes(SEARCH)) search += 1;
  }
  return { states, search };
}

/** The service query the console makes for a query string (as AdminUiController.organizationsPage). */
function listQuery(query: Partial<ConsoleQueryDto>): ConnectionListQuery {
  const page = query.page ?? 1;
  return {
    state: query.state,
    search: query.q,
    sort: query.sort,
    limit: PAGE_SIZE,
    offset: (page - 1) * PAGE_SIZE,
  };
}

/**
 * Checks each measure once against what the data should give (recording the SQL it sends), times
 * them all, then EXPLAINs the recorded statements.
 */
async function measure(t: TestApp, agent: TestAgent, loaded: Loaded): Promise<SizeResult> {
  const { size } = loaded;
  const states = t.app.get(ConnectionsReadModel);
  const want = expected(size);
  const attention = ATTENTION_STATES.reduce((n, s) => n + want.states[s], 0);
  const totals: Partial<Record<MeasureId, number>> = {
    first: size,
    attention,
    search: want.search,
    deep: size,
  };
  const pageInfo = `1–${Math.min(PAGE_SIZE, size)} of ${size}`;

  const countsNow = () => states.counts(new Date());
  // As the console calls it: the counts it already has give the total (without a search).
  const snapshot = await countsNow();
  const list = (id: MeasureId) => () =>
    states.list(listQuery(LISTS[id]!(size)), new Date(), id === 'search' ? undefined : snapshot);
  const getOk = async (request: Promise<{ status: number; text: string }>, mustContain?: string) => {
    const res = await request;
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    if (mustContain && !res.text.includes(mustContain)) throw new Error(`The page lacks "${mustContain}"`);
  };
  const tasks: Record<MeasureId, Task> = {
    select1: () => t.dataSource.query('SELECT 1'),
    counts: countsNow,
    first: list('first'),
    attention: list('attention'),
    search: list('search'),
    deep: list('deep'),
    // What the controller awaits: the counts, then the page with its total taken from them.
    page: async () => {
      const now = new Date();
      return states.list(listQuery(LISTS.first!(size)), now, await states.counts(now));
    },
    live: () => getOk(agent.get('/health/live')),
    liveAnonymous: () => getOk(t.http().get('/health/live')),
    http: () => getOk(agent.get('/admin'), pageInfo),
  };

  const problems: string[] = [];
  const sent: Partial<Record<MeasureId, SentQuery>> = {};
  const counted = await captureQueries(t.dataSource, countsNow);
  sent.counts = counted.sent[0];
  for (const state of CONNECTION_STATES) {
    if (counted.result[state] !== want.states[state]) {
      problems.push(
        `counts: ${state} ${count(counted.result[state])}, loaded ${count(want.states[state])} (!)`,
      );
    }
  }
  for (const id of Object.keys(LISTS) as MeasureId[]) {
    const { result, sent: statements } = await captureQueries(t.dataSource, list(id));
    sent[id] = statements[0];
    const total = totals[id]!;
    const rows = Math.min(PAGE_SIZE, total - listQuery(LISTS[id]!(size)).offset!);
    if (result.total !== total || result.items.length !== rows) {
      problems.push(
        `${id}: ${result.items.length} rows of ${count(result.total)}, expected ${rows} of ${count(total)} (!)`,
      );
    }
  }

  const results = await compare(tasks, RUNS, 1, WARMUP, RUNS);
  for (const { id, label } of MEASURES) {
    for (const [message, n] of results[id].failures) problems.push(`${label}: ${n} × ${message} (!)`);
  }

  const plans: string[] = [];
  for (const id of ['counts', ...Object.keys(LISTS)] as MeasureId[]) {
    const statement = sent[id];
    const label = MEASURES.find((m) => m.id === id)!.label;
    plans.push(`${label}: ${statement ? await explainPlan(t.dataSource, statement) : 'no SQL recorded (!)'}`);
  }
  return { loaded, results, counts: counted.result, problems, plans };
}

function printResults(sizes: SizeResult[]): void {
  const p50 = (size: SizeResult, id: MeasureId): number => percentile(size.results[id].latencies, 50);
  const header = ['measure'];
  for (const { loaded } of sizes) header.push(`${count(loaded.size)}: p50 ms`, 'p95 ms', '× base');
  const [first, last] = [sizes[0], sizes[sizes.length - 1]];
  if (sizes.length > 1) header.push(`p50 ${compact(last.loaded.size)} / ${compact(first.loaded.size)}`);

  const rows = MEASURES.map(({ id, label, base }) => {
    const row = [label];
    for (const size of sizes) {
      const latencies = size.results[id].latencies;
      row.push(ms(p50(size, id)), ms(percentile(latencies, 95)), ratio(p50(size, id) / p50(size, base)));
    }
    if (sizes.length > 1) row.push(ratio(p50(last, id) / p50(first, id)));
    return row;
  });

  console.log(
    `\n  Latency of one call (ms, p50 / p95 of ${RUNS}), from the caller: the service methods on the app's` +
      '\n  instance, then HTTP on loopback as the signed-in root admin (supertest, one connection per request).' +
      '\n  × base: p50 over the p50 of SELECT 1 (queries) or of GET /health/live with the same session cookie (HTTP).\n',
  );
  console.log(table(header, rows));

  const overhead = sizes.map(
    (size) => `${ms(p50(size, 'http') - p50(size, 'page'))} ms at ${count(size.loaded.size)}`,
  );
  console.log(
    `\n  GET /admin minus its queries (counts, then list), p50: ${overhead.join(', ')}: session, guards, the` +
      '\n  unread-notification count, rendering 50 rows and HTTP (a difference of p50s: noisy where the' +
      '\n  queries dominate).',
  );
  const handSize = sizes.find((size) => size.loaded.size === 10_000);
  if (handSize) {
    console.log(
      `  Measured by hand before: about ${HAND_MEASURED_MS} ms per page query at 10,000 organizations; here ` +
        `${ms(p50(handSize, 'first'))} ms (page 1) and ${ms(p50(handSize, 'attention'))} ms (attention) at p50.`,
    );
  }

  console.log('\n  Setup, not measured:\n');
  console.log(
    table(
      ['organizations', 'load ms', 'vacuum ms', ...CONNECTION_STATES],
      sizes.map(({ loaded, counts }) => [
        count(loaded.size),
        ms(loaded.loadMs),
        ms(loaded.vacuumMs),
        ...CONNECTION_STATES.map((state) => count(counts[state])),
      ]),
    ),
  );
  console.log(
    `  The second load adds organizations ${count(first.loaded.size + 1)}..${count(last.loaded.size)} to the first.` +
      ' States as counts() returned them.',
  );

  console.log('');
  for (const { loaded, problems, plans } of sizes) {
    const label = `${count(loaded.size)}:`;
    console.log(
      `  ${label} ${problems.length === 0 ? 'every count, total and page as the loaded data should give' : problems.join('; ')}`,
    );
    for (const plan of plans) console.log(`  ${label} EXPLAIN ${plan}`);
  }
  console.log('  (!) marks a figure that differs from what the loaded data should give.');
}

function ratio(value: number): string {
  return `${value < 10 ? value.toFixed(1) : value.toFixed(0)}×`;
}

/** 10,000 → 10k. */
function compact(value: number): string {
  return value >= 1000 && value % 1000 === 0 ? `${value / 1000}k` : count(value);
}
