import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { ScheduledCheckService } from 'src/connection-health/scheduled-check.service';
import { ConnectionNotifier } from 'src/connection-health/connection-notifier.service';
import { ConnectionsReadModel } from 'src/connections/connections.read-model';
import { TokenStoreService } from 'src/connections/token-store.service';
import { SecretCipherService } from 'src/crypto/secret-cipher.service';
import { SmartDiscoveryService } from 'src/epic-auth/smart-discovery.service';

import { FakeEpic, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

import { printClosing } from './app-log';
import { BenchDatabase, cleanupOnce, closeAll, createBenchDatabase, printEnvironment } from './bench-db';
import { captureQueries, explainPlan } from './explain';
import { count, ms, percentile, runLoad, table } from './load';

interface Scenario {
  organizations: number;
  /** One organization in this many needs attention: half expiring, half already expired. */
  attentionEvery: number;
}
/**
 * Each starts from a freshly loaded, never-checked state: 1% needing attention at 10,000 and
 * 100,000 organizations, and 100,000 with as many needing attention as at 10,000 (0.1%), which
 * tells the number of organizations apart from the number needing attention.
 */
const SCENARIOS: Scenario[] = [
  { organizations: 10_000, attentionEvery: 100 },
  { organizations: 100_000, attentionEvery: 1_000 },
  { organizations: 100_000, attentionEvery: 100 },
];
/** A first round, not shown (see main). */
const WARMUP: Scenario = { organizations: 2_000, attentionEvery: 100 };
/** Timed passes of the selection (after one warm-up pass). */
const SELECTION_RUNS = 15;
const SELECTION_TARGET_MS = 1_000;
const SAMPLE_EVERY_MS = 5;
const MB = 1024 * 1024;
/**
 * The tick's page size (PAGE_SIZE in scheduled-check.service.ts, not exported), the 4th argument it
 * passes to ConnectionsReadModel.candidates. The instrumented tick checks it passed this one.
 */
const CHECK_PAGE_SIZE = 500;

type Check = ScheduledCheckService;
/** The read model the check selects its candidates through (ConnectionsReadModel.candidates). */
type ReadModel = ConnectionsReadModel;
type CandidatesArgs = Parameters<ReadModel['candidates']>;
type CandidateRow = Awaited<ReturnType<ReadModel['candidates']>>[number];
type CheckCounts = NonNullable<Awaited<ReturnType<Check['tick']>>>;

interface Loaded {
  organizations: number;
  expiring: number;
  expired: number;
  loadMs: number;
  vacuumMs: number;
}

interface Selection {
  /** Whole passes: every page the tick would query, in order. */
  passes: number[];
  /** The first page alone (no keyset position). */
  firstPages: number[];
  pages: number;
  rows: number;
  plans: string[];
}

interface TickResult {
  counts: CheckCounts;
  tickMs: number;
  /** After the tick returned, until the connection-event listeners it triggered had finished. */
  tailMs: number;
  selectionCalls: number;
  selectionMs: number;
  /** The tick's own selection parameters equal those the bench measured with. */
  sameParameters: boolean;
  /** In refreshAll (the due connections, CONNECTION_CHECK_CONCURRENCY at a time). */
  refreshMs: number;
  /** In the notifier's evaluate called by the tick (its pages, then the flagged re-check). */
  tickEvaluateMs: number;
  /** The notifier's evaluations run by connection-event listeners, concurrently with the tick. */
  listenerEvaluations: number;
  listenerEvaluateMs: number;
  /** Most connection-event listeners running at once. */
  listenerPeak: number;
  epicRequests: number;
  tokenRequests: number;
  notifications: number;
  memory: MemoryPeak;
}

interface MemoryPeak {
  heapMb: number;
  rssMb: number;
  /** Peak of old_space + large_object_space in use over the baseline. */
  oldMb: number;
  retainedHeapMb: number;
  samples: number;
  /** This process's CPU time (user + system) while sampling. */
  cpuMs: number;
}

/** Runs the benchmark and prints its figures; resolves to the exit code. */
export async function main(): Promise<number> {
  const started = performance.now();
  const db = await createBenchDatabase();
  if (!db) return 1;

  let app: TestApp | undefined;
  let epic: FakeEpic | undefined;
  // The app, then the fake.
  const cleanup = cleanupOnce('the app', () =>
    closeAll(
      db,
      () => app?.close(),
      () => epic?.close(),
    ),
  );

  try {
    // Discovery of an organization's fhir_base_url happens before a refresh (OAuthClientService),
    // so the organizations point at a fake Epic in this process; no client is registered there.
    epic = await startFakeEpic();
    app = await createTestApp({ databaseUrl: db.url, env: { CRON_ENABLED: 'false' } });
    const config = app.app.get<AppConfig>(APP_CONFIG);
    printHeader(db, epic, config);

    // A round at WARMUP first, not shown: the first tick of a process pays for JIT
    // compilation and lazy initialisation, which would be charged to the first row.
    const results: ScenarioResult[] = [];
    for (const [i, scenario] of [WARMUP, ...SCENARIOS].entries()) {
      if (i > 0) await truncate(app);
      const result = await runScenario(app, epic, scenario, config);
      if (i > 0) results.push(result);
    }
    printResults(results);
    printClosing(started);
    return 0;
  } finally {
    await cleanup();
  }
}

interface ScenarioResult {
  scenario: Scenario;
  loaded: Loaded;
  discovery: { requests: number; ms: number };
  selection: Selection;
  tick: TickResult;
  states: Record<string, number>;
}

/** Loads the organizations, warms discovery, measures the selection, then one tick. */
async function runScenario(
  t: TestApp,
  epic: FakeEpic,
  scenario: Scenario,
  config: AppConfig,
): Promise<ScenarioResult> {
  const loaded = await load(t, epic, scenario);
  const now = new Date();
  const discovery = await warmDiscovery(t, epic, now, config);
  const { args, result: selection } = await measureSelection(t, now, config);
  const tick = await measureTick(t, epic, now, args);
  const states = await stateCounts(t);
  return { scenario, loaded, discovery, selection, tick, states };
}

function printResults(results: ScenarioResult[]): void {
  const flag = (ok: boolean): string => (ok ? '' : ' (!)');
  const mb = (value: number): string => value.toFixed(1);
  const rows: string[][] = [];
  const phases: string[][] = [];
  const memory: string[][] = [];
  const setup: string[][] = [];
  const notes: string[] = [];
  let worstSelection = 0;
  for (const { scenario, loaded, discovery, selection, tick, states } of results) {
    const size = scenario.organizations;
    const attention = loaded.expiring + loaded.expired;
    const selMax = percentile(selection.passes, 100);
    worstSelection = Math.max(worstSelection, selMax);
    const { counts } = tick;
    rows.push([
      count(size),
      count(attention),
      ms(percentile(selection.passes, 50)),
      ms(selMax),
      ms(tick.tickMs),
      `${count(counts.candidates)}${flag(counts.candidates === attention)}`,
      `${count(counts.reauthenticationRequired)}${flag(counts.reauthenticationRequired === loaded.expired)}`,
      `${count(tick.notifications)}${flag(tick.notifications === attention)}`,
      `${count(tick.epicRequests)}${flag(tick.epicRequests === 0)}`,
      mb(tick.memory.heapMb),
      mb(tick.memory.rssMb),
    ]);
    const other = tick.tickMs - tick.selectionMs - tick.refreshMs - tick.tickEvaluateMs;
    phases.push([
      count(size),
      ms(tick.tickMs),
      ms(tick.memory.cpuMs),
      `${tick.selectionCalls}${flag(tick.selectionCalls === selection.pages)}`,
      ms(tick.selectionMs),
      ms(tick.refreshMs),
      ms(tick.tickEvaluateMs),
      ms(other),
      count(counts.notified),
      `${count(tick.listenerEvaluations)}${flag(tick.listenerEvaluations === loaded.expired)}`,
      ms(tick.listenerEvaluateMs),
      count(tick.listenerPeak),
      ms(tick.tailMs),
      ms(tick.tickMs / Math.max(1, attention)),
    ]);
    memory.push([
      count(size),
      mb(tick.memory.heapMb),
      mb(tick.memory.oldMb),
      mb(tick.memory.rssMb),
      mb(tick.memory.retainedHeapMb),
      count(tick.memory.samples),
    ]);
    setup.push([
      count(size),
      ms(loaded.loadMs),
      ms(loaded.vacuumMs),
      count(discovery.requests),
      ms(discovery.ms),
      String(selection.pages),
      count(selection.rows),
      ms(percentile(selection.firstPages, 50)),
    ]);
    const label = `${count(size)} (${100 / scenario.attentionEvery}%):`;
    if (!tick.sameParameters) {
      notes.push(`${label} the tick selected with other parameters than measured (!)`);
    }
    if (tick.tokenRequests > 0) notes.push(`${label} ${tick.tokenRequests} token endpoint calls (!)`);
    if (counts.refreshed + counts.refreshFailed > 0) {
      notes.push(`${label} ${counts.refreshed} refreshed, ${counts.refreshFailed} failed transiently (!)`);
    }
    const stateList = Object.entries(states)
      .filter(([, n]) => n > 0)
      .map(([state, n]) => `${state} ${count(n)}`);
    notes.push(`${label} states after the tick: ${stateList.join(', ')}`);
    for (const [i, plan] of selection.plans.entries()) {
      const which = selection.plans.length === 1 ? 'only page' : i === 0 ? 'first page' : 'last page';
      notes.push(`${label} EXPLAIN ${which}: ${plan}`);
    }
  }

  console.log(
    `\n  Per row: a fresh load, the selection alone (${SELECTION_RUNS} passes over every page after a ` +
      `warm-up pass), then one tick(now) with the same now.\n`,
  );
  console.log(
    table(
      [
        'organizations',
        'need attention',
        'selection p50 ms',
        'selection max ms',
        'tick ms',
        'candidates',
        'reauth. required',
        'notifications',
        'Epic calls',
        'peak heap Δ MB',
        'peak RSS Δ MB',
      ],
      rows,
    ),
  );
  const met = worstSelection < SELECTION_TARGET_MS;
  console.log(
    `\n  Target selection < ${count(SELECTION_TARGET_MS)} ms: ${met ? 'met' : 'MISSED'} ` +
      `(slowest pass ${ms(worstSelection)} ms, up to ` +
      `${count(Math.max(...SCENARIOS.map((s) => s.organizations)))} organizations).`,
  );
  console.log('  (!) marks a figure that differs from what the loaded data should give.');

  console.log(`\n  Where the tick's time goes (ms; the steps run one after another, per page):\n`);
  console.log(
    table(
      [
        'organizations',
        'tick',
        'app CPU',
        'sel. calls',
        'selection',
        'refreshAll',
        'evaluate',
        'other',
        'notified by tick',
        'listener evals',
        'listener eval ms',
        'listener peak',
        'listener tail',
        'tick per attention',
      ],
      phases,
    ),
  );
  console.log(
    '  app CPU: this process (app and in-process fake), tick and listener tail.' +
      '\n  evaluate: the notifier called by the tick (its pages, then the flagged re-check). Listener evals run' +
      '\n  concurrently with refreshAll, one per cleared connection (Lost event); peak: most at once; tail:' +
      '\n  after tick() returned.',
  );

  console.log('\n  Memory during the tick (MB over the baseline):\n');
  console.log(
    table(
      ['organizations', 'peak heapUsed Δ', 'peak old gen. Δ', 'peak RSS Δ', 'heap after GC Δ', 'samples'],
      memory,
    ),
  );

  console.log('\n  Setup, not part of the tick:\n');
  console.log(
    table(
      [
        'organizations',
        'load ms',
        'vacuum ms',
        'discovery reqs',
        'discovery ms',
        'sel. pages',
        'sel. rows',
        'page 1 p50 ms',
      ],
      setup,
    ),
  );
  console.log('');
  for (const note of notes) console.log(`  ${note}`);
}

function printHeader(db: BenchDatabase, epic: FakeEpic, config: AppConfig): void {
  const env = config.env;
  printEnvironment('Connection check benchmark (ScheduledCheckService.tick)', db, env.DATABASE_POOL_SIZE);
  console.log(`  Fake Epic in this process (discovery only): ${epic.fhirBase}`);
  console.log(
    `  CONNECTION_CHECK_CRON=${env.CONNECTION_CHECK_CRON}, TOKEN_REFRESH_MARGIN_SECONDS=` +
      `${env.TOKEN_REFRESH_MARGIN_SECONDS}, EXPIRY_WARNING_MINUTES=${env.EXPIRY_WARNING_MINUTES}, ` +
      `CONNECTION_CHECK_CONCURRENCY=${env.CONNECTION_CHECK_CONCURRENCY}`,
  );
  const gc = typeof (globalThis as { gc?: unknown }).gc === 'function';
  console.log(
    '  Data: organizations with a refresh token and an access token valid 10 days or more (not candidates);' +
      '\n  those needing attention have no refresh token, half ending in 15-20 min (expiring), half ended' +
      '\n  1-6 min ago (expired: the tick clears them without a token call).',
  );
  console.log(
    `  Memory: process.memoryUsage() every ${SAMPLE_EVERY_MS} ms during the tick, against a baseline taken ` +
      `just before it${gc ? ' after a full GC' : ' (no --expose-gc: without a GC first)'}.`,
  );
}

/**
 * Loads `size` configured organizations with their connection row (`organization_connection`) and
 * their own credential (with the FHIR base it was issued for), set-based. Their admins were last
 * told "connected" a day ago (the steady state), so the tick's transitions are notified.
 * Healthy credentials carry dummy token text (never read by the check); the ones that need
 * attention get a real ciphertext, because the refresher decrypts the access token even when
 * there is no refresh token (TokenStoreService.reveal).
 */
async function load(t: TestApp, epic: FakeEpic, scenario: Scenario): Promise<Loaded> {
  const size = scenario.organizations;
  const started = performance.now();
  const at = new Date();
  // The organizations (registration only), and each one's connection row (organization_connection,
  // the Connections module's): connected, last told `connected`, its token_expiry the credential's.
  await t.dataSource.query(
    `WITH g AS (
       SELECT n,
              CASE WHEN n % $4::int <> 0 THEN $3::timestamptz + interval '10 days' + (n % 86400) * interval '1 second'
                   WHEN n % (2 * $4::int) = 0
                   THEN $3::timestamptz - interval '1 minute' - (n / $4::int % 300) * interval '1 second'
                   ELSE $3::timestamptz + interval '15 minutes' + (n / $4::int % 300) * interval '1 second' END
                AS expiry
         FROM generate_series(1, $1::int) AS n
     ), o AS (
       INSERT INTO organization (name, slug, epic_client_id, fhir_base_url)
       SELECT format('Bench organization %s-%s', $5::text, n), format('bench-%s-%s', $5::text, n),
              format('bench-client-%s-%s', $5::text, n), $2
         FROM g
       RETURNING id, slug
     )
     INSERT INTO organization_connection (organization_id, is_connected, token_expiry, last_sync,
                                          notified_state, notified_state_at)
     SELECT o.id, true, g.expiry, $3::timestamptz - interval '1 hour', 'connected', $3::timestamptz - interval '1 day'
       FROM o JOIN g ON o.slug = format('bench-%s-%s', $5::text, g.n)`,
    // Client ids differ between rounds: discovery caches per base URL and client id.
    [size, epic.fhirBase, at, scenario.attentionEvery, `${size}x${scenario.attentionEvery}`],
  );
  // Each organization's own credential, its expiry the connection's token_expiry, issued for the
  // organization's FHIR base (a credential without fhir_base_url counts as no connection).
  await t.dataSource.query(
    `INSERT INTO epic_credential (organization_id, user_id, purpose, fhir_base_url, access_token_enc,
                                  refresh_token_enc, expires_at, scopes, created_at, updated_at)
     SELECT o.id, NULL, 'organization', o.fhir_base_url, 'bench-dummy-access-token',
            CASE WHEN s.token_expiry > $1::timestamptz + interval '1 day' THEN 'bench-dummy-refresh-token' END,
            s.token_expiry, 'openid fhirUser offline_access', $1::timestamptz - interval '1 hour',
            $1::timestamptz - interval '1 hour'
       FROM organization o JOIN organization_connection s ON s.organization_id = o.id`,
    [at],
  );
  const attention = await t.dataSource.query<{ id: string }[]>(
    'SELECT id FROM epic_credential WHERE refresh_token_enc IS NULL',
  );
  const cipher = t.app.get(SecretCipherService);
  await t.dataSource.query(
    `UPDATE epic_credential c SET access_token_enc = v.enc
       FROM unnest($1::uuid[], $2::text[]) AS v(id, enc) WHERE c.id = v.id`,
    [
      attention.map((r) => r.id),
      attention.map((r) => cipher.encrypt(`bench-access-${r.id}`, `epic_credential:${r.id}:access_token`)),
    ],
  );
  // The ciphertext must be what the app can read, or the refresher fails on it (and counts it transient).
  const tokens = t.app.get(TokenStoreService);
  const sample = attention[0] ? await tokens.findById(attention[0].id) : null;
  if (sample && (await tokens.reveal(sample)).accessToken !== `bench-access-${sample.id}`) {
    throw new Error('The app cannot decrypt the loaded access tokens');
  }
  const loadMs = performance.now() - started;

  // As autovacuum would have by the time a scheduler runs over long-lived rows: statistics, hint
  // bits and the visibility map.
  const vacuumStarted = performance.now();
  await t.dataSource.query('VACUUM (ANALYZE) organization, organization_connection, epic_credential');
  const vacuumMs = performance.now() - vacuumStarted;

  const [row] = await t.dataSource.query<{ n: number; expiring: number; expired: number }[]>(
    `SELECT count(*)::int AS n,
            count(*) FILTER (WHERE refresh_token_enc IS NULL AND expires_at > $1)::int AS expiring,
            count(*) FILTER (WHERE refresh_token_enc IS NULL AND expires_at <= $1)::int AS expired
       FROM epic_credential WHERE user_id IS NULL`,
    [at],
  );
  if (row.n !== size) throw new Error(`Loaded ${row.n} credentials instead of ${size}`);
  const [missing] = await t.dataSource.query<{ n: number }[]>(
    `SELECT count(*)::int AS n FROM epic_credential WHERE user_id IS NULL AND fhir_base_url IS DISTINCT FROM $1`,
    [epic.fhirBase],
  );
  if (missing.n !== 0) throw new Error(`${missing.n} credentials lack the FHIR base they were issued for`);
  return { organizations: size, expiring: row.expiring, expired: row.expired, loadMs, vacuumMs };
}

/** Empties what a load and a tick wrote, for the next size. */
async function truncate(t: TestApp): Promise<void> {
  await t.dataSource.query('TRUNCATE organization, scheduled_run, audit_event CASCADE');
}

/**
 * The refresher discovers the organization's SMART endpoints before it takes the lock
 * (OAuthClientService.forOrganization), cached per base URL and client id for
 * DISCOVERY_CACHE_SECONDS. Every organization has its own client id, so a cold cache means one
 * request per due organization. They are made here, through the app's own discovery service and
 * at the tick's concurrency, so that the tick measured below calls no Epic at all.
 */
async function warmDiscovery(
  t: TestApp,
  epic: FakeEpic,
  now: Date,
  config: AppConfig,
): Promise<{ requests: number; ms: number }> {
  const due = await t.dataSource.query<{ base: string; client_id: string; method: string }[]>(
    `SELECT o.fhir_base_url AS base, o.epic_client_id AS client_id, o.epic_token_auth_method AS method
       FROM epic_credential c JOIN organization o ON o.id = c.organization_id
      WHERE c.user_id IS NULL AND c.refresh_token_enc IS NULL AND c.expires_at <= $1`,
    [now],
  );
  const discovery = t.app.get(SmartDiscoveryService);
  epic.clearLog();
  let next = 0;
  const result = await runLoad(
    () => {
      const org = due[next++];
      return discovery.discover(org.base, {
        clientId: org.client_id,
        authMethod: org.method as 'client_secret_basic' | 'client_secret_post',
      });
    },
    due.length,
    config.env.CONNECTION_CHECK_CONCURRENCY,
  );
  if (result.errors > 0) throw new Error(`Discovery failed: ${[...result.failures.keys()].join('; ')}`);
  const requests = epic.requests().length;
  epic.clearLog();
  return { requests, ms: result.wallMs };
}

/**
 * The tick's selection parameters at `now`, as ScheduledCheckService.check computes them and
 * passes them to ConnectionsReadModel.candidates (the first page: no keyset position).
 */
function selectionArgs(service: Check, now: Date, config: AppConfig): CandidatesArgs {
  const nextTick = service.nextTickAfter(now);
  const refreshBefore = new Date(nextTick.getTime() + config.env.TOKEN_REFRESH_MARGIN_SECONDS * 1000);
  const lookBefore = new Date(
    Math.max(refreshBefore.getTime(), nextTick.getTime() + config.env.EXPIRY_WARNING_MINUTES * 60_000),
  );
  return [refreshBefore, lookBefore, null, CHECK_PAGE_SIZE];
}

/** The read model instance the check service holds (its private `connections`): the one the tick calls. */
function readModelOf(service: Check): ReadModel {
  return service['connections'];
}

/**
 * The selection alone: the check's `candidates` query (ConnectionsReadModel.candidates, on the
 * instance the service holds), page after page as the tick pages through it, timed from the caller.
 * Then EXPLAIN (ANALYZE, BUFFERS) of the first and the last page, with the SQL and parameters the
 * read model sent.
 */
async function measureSelection(
  t: TestApp,
  now: Date,
  config: AppConfig,
): Promise<{ args: CandidatesArgs; result: Selection }> {
  const service = t.app.get(ScheduledCheckService);
  const readModel = readModelOf(service);
  const args = selectionArgs(service, now, config);
  const [refreshBefore, lookBefore, , pageSize] = args;
  // What candidates() sends, recorded on the DataSource instance the read model holds. The page size
  // is the query's LIMIT; the tick stops at the first page shorter than that.
  const ds = t.dataSource;
  const first = await captureQueries(ds, () =>
    readModel.candidates(refreshBefore, lookBefore, null, pageSize),
  );
  const limit = Number(/LIMIT\s+(\d+)\s*$/i.exec(first.sent[0]?.sql ?? '')?.[1] ?? Infinity);
  const { result: pass, sent } = await captureQueries(ds, () =>
    selectionPass(readModel, refreshBefore, lookBefore, pageSize, limit),
  );

  const passes: number[] = [];
  const firstPages: number[] = [];
  for (let i = 0; i < SELECTION_RUNS; i++) {
    const timed = await selectionPass(readModel, refreshBefore, lookBefore, pageSize, limit);
    passes.push(timed.ms);
    firstPages.push(timed.firstMs);
  }

  const plans: string[] = [];
  for (const query of sent.length > 1 ? [sent[0], sent[sent.length - 1]] : sent) {
    plans.push(await explainPlan(ds, query));
  }
  if (!Number.isFinite(limit)) plans.push('(no LIMIT found in the SQL: paged until an empty page)');
  return {
    args,
    result: { passes, firstPages, pages: pass.pages, rows: pass.rows, plans },
  };
}

/**
 * Every page of candidates, as ScheduledCheckService.check pages through them: `pageSize` asked
 * for, `limit` the LIMIT the SQL carried (the same, unless the read model caps it).
 */
async function selectionPass(
  readModel: ReadModel,
  refreshBefore: Date,
  lookBefore: Date,
  pageSize: number,
  limit: number,
): Promise<{ ms: number; firstMs: number; pages: number; rows: number }> {
  const started = performance.now();
  let firstMs = NaN;
  let pages = 0;
  let rows = 0;
  let after: CandidatesArgs[2] = null;
  for (;;) {
    const pageStarted = performance.now();
    const page: CandidateRow[] = await readModel.candidates(refreshBefore, lookBefore, after, pageSize);
    if (pages === 0) firstMs = performance.now() - pageStarted;
    pages += 1;
    rows += page.length;
    if (page.length === 0 || page.length < limit) break;
    const last = page[page.length - 1];
    after = { expiresAt: last.expiresAt, id: last.id };
  }
  return { ms: performance.now() - started, firstMs, pages, rows };
}

/**
 * One tick(now), with memory sampled every SAMPLE_EVERY_MS ms from a baseline taken just before
 * it, where its time goes (see `instrument`), and the connection-event listeners the tick triggers
 * (ConnectionNotifier.onConnectionEvent, run asynchronously after each cleared connection) awaited
 * before the sampling stops.
 */
async function measureTick(t: TestApp, epic: FakeEpic, now: Date, args: CandidatesArgs): Promise<TickResult> {
  const service = t.app.get(ScheduledCheckService);
  const probe = instrument(service, t.app.get(ConnectionNotifier), args);
  epic.clearLog();
  const sampler = await sampleMemory();
  let counts: CheckCounts | null;
  let tickMs: number;
  let tailMs: number;
  try {
    const started = performance.now();
    counts = await service.tick(now);
    tickMs = performance.now() - started;
    await probe.listenersIdle();
    tailMs = performance.now() - started - tickMs;
  } finally {
    probe.restore();
  }
  const memory = await sampler.stop();
  if (!counts) throw new Error('The tick did not run (the scheduler lock was taken)');

  const [row] = await t.dataSource.query<{ n: number }[]>('SELECT count(*)::int AS n FROM notification');
  return {
    counts,
    tickMs,
    tailMs,
    ...probe.stats,
    epicRequests: epic.requests().length,
    tokenRequests: epic.calls('token'),
    notifications: row.n,
    memory,
  };
}

type Phases = Pick<
  TickResult,
  | 'selectionCalls'
  | 'selectionMs'
  | 'sameParameters'
  | 'refreshMs'
  | 'tickEvaluateMs'
  | 'listenerEvaluations'
  | 'listenerEvaluateMs'
  | 'listenerPeak'
>;

/**
 * Wraps, on the app's instances, the tick's steps (they run one after the other in
 * ScheduledCheckService.check: per page the read model's `candidates` (ConnectionsReadModel, the
 * instance the service holds), then `refreshAll`, then the notifier's `evaluate`; then the flagged
 * re-check's `evaluate`) to time them, and the connection-event
 * listener to count and await it. Nest calls methods through the instance (`instance[method]`),
 * so the wrappers see every call. Evaluations from a listener are told apart from the tick's by an
 * AsyncLocalStorage set in the listener wrapper.
 */
function instrument(
  service: Check,
  notifier: ConnectionNotifier,
  args: CandidatesArgs,
): { stats: Phases; listenersIdle(): Promise<void>; restore(): void } {
  const stats: Phases = {
    selectionCalls: 0,
    selectionMs: 0,
    sameParameters: true,
    refreshMs: 0,
    tickEvaluateMs: 0,
    listenerEvaluations: 0,
    listenerEvaluateMs: 0,
    listenerPeak: 0,
  };
  const inListener = new AsyncLocalStorage<boolean>();
  const timed = async <T>(work: () => Promise<T>, add: (ms: number) => void): Promise<T> => {
    const started = performance.now();
    try {
      return await work();
    } finally {
      add(performance.now() - started);
    }
  };

  const readModel = readModelOf(service);
  const candidates = readModel.candidates;
  readModel.candidates = (...callArgs: CandidatesArgs) => {
    if (stats.selectionCalls === 0) {
      stats.sameParameters =
        callArgs[0].getTime() === args[0].getTime() &&
        callArgs[1].getTime() === args[1].getTime() &&
        callArgs[2] === null &&
        callArgs[3] === args[3];
    }
    stats.selectionCalls += 1;
    return timed(
      () => candidates.apply(readModel, callArgs),
      (ms) => (stats.selectionMs += ms),
    );
  };
  const refreshAll = service['refreshAll'];
  service['refreshAll'] = (...callArgs: Parameters<Check['refreshAll']>) =>
    timed(
      () => refreshAll.apply(service, callArgs),
      (ms) => (stats.refreshMs += ms),
    );
  const evaluate = notifier.evaluate;
  notifier.evaluate = (...callArgs: Parameters<ConnectionNotifier['evaluate']>) => {
    const work = (): Promise<number> => evaluate.apply(notifier, callArgs);
    if (!inListener.getStore()) return timed(work, (ms) => (stats.tickEvaluateMs += ms));
    stats.listenerEvaluations += 1;
    return timed(work, (ms) => (stats.listenerEvaluateMs += ms));
  };
  const onConnectionEvent = notifier.onConnectionEvent;
  let pending = 0;
  let idle: (() => void) | undefined;
  notifier.onConnectionEvent = async (event) => {
    pending += 1;
    stats.listenerPeak = Math.max(stats.listenerPeak, pending);
    try {
      await inListener.run(true, () => onConnectionEvent.call(notifier, event));
    } finally {
      pending -= 1;
      if (pending === 0) idle?.();
    }
  };

  return {
    stats,
    listenersIdle: () =>
      pending === 0 ? Promise.resolve() : new Promise<void>((resolve) => (idle = resolve)),
    restore: () => {
      readModel.candidates = candidates;
      service['refreshAll'] = refreshAll;
      notifier.evaluate = evaluate;
      notifier.onConnectionEvent = onConnectionEvent;
    },
  };
}

function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
}

/** Old generation in use: what survived young-generation collections (not short-lived garbage). */
function oldGeneration(): number {
  return getHeapSpaceStatistics()
    .filter((space) => space.space_name === 'old_space' || space.space_name === 'large_object_space')
    .reduce((sum, space) => sum + space.space_used_size, 0);
}

/**
 * Samples heapUsed, rss and the old generation every SAMPLE_EVERY_MS ms (when the event loop lets
 * the timer run) and keeps the peaks over a baseline taken now. `stop()` also reports the heap
 * still used after a GC.
 */
async function sampleMemory(): Promise<{ stop(): Promise<MemoryPeak> }> {
  collectGarbage();
  await new Promise((resolve) => setImmediate(resolve));
  const base = process.memoryUsage();
  const baseOld = oldGeneration();
  const baseCpu = process.cpuUsage();
  let heap = base.heapUsed;
  let rss = base.rss;
  let old = baseOld;
  let samples = 0;
  const sample = (): void => {
    const m = process.memoryUsage();
    heap = Math.max(heap, m.heapUsed);
    rss = Math.max(rss, m.rss);
    old = Math.max(old, oldGeneration());
    samples += 1;
  };
  const timer = setInterval(sample, SAMPLE_EVERY_MS);
  return {
    stop: async () => {
      clearInterval(timer);
      sample();
      const cpu = process.cpuUsage(baseCpu);
      await new Promise((resolve) => setImmediate(resolve));
      collectGarbage();
      return {
        heapMb: (heap - base.heapUsed) / MB,
        rssMb: (rss - base.rss) / MB,
        oldMb: (old - baseOld) / MB,
        retainedHeapMb: (process.memoryUsage().heapUsed - base.heapUsed) / MB,
        samples,
        cpuMs: (cpu.user + cpu.system) / 1000,
      };
    },
  };
}

/** Organizations per connection state after the tick, counted by the app in SQL. */
function stateCounts(t: TestApp): Promise<Record<string, number>> {
  return t.app.get(ConnectionsReadModel).counts(new Date());
}
