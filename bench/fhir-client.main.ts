import { performance } from 'node:perf_hooks';

import axios from 'axios';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { TokenStoreService } from 'src/connections/token-store.service';
import { FhirClient, FhirClientService } from 'src/fhir-client/fhir-client.service';

import { connectedOrganization, setStoredExpiry } from 'test/factories/epic-connection';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

import { printClosing } from './app-log';
import { BenchDatabase, cleanupOnce, closeAll, createBenchDatabase, printEnvironment } from './bench-db';
import { compare, count, emptyResult, ms, runLoad, summary, table, Task } from './load';

const REQUESTS = 5_000;
const WARMUP = 200;
/** The measured requests of each client are split into alternating rounds, so drift hits both alike. */
const ROUNDS = 5;
const CONCURRENCIES = [1, 50];
const BREAKDOWN_CALLS = 2_000;
const STORM_READS = 1_000;
const TARGET_RATIO = 1.15;

/** Runs the benchmark and prints its figures; resolves to the exit code. */
export async function main(): Promise<number> {
  const started = performance.now();
  const db = await createBenchDatabase();
  if (!db) return 1;

  const apps: TestApp[] = [];
  let epic: FakeEpic | undefined;
  // Both apps together (see above), then the fake.
  const cleanup = cleanupOnce('the apps', () =>
    closeAll(
      db,
      () => Promise.all(apps.map((app) => app.close())),
      () => epic?.close(),
    ),
  );

  try {
    epic = await startFakeEpic();
    const t1 = await createTestApp({ databaseUrl: db.url });
    apps.push(t1);
    const config = t1.app.get<AppConfig>(APP_CONFIG);
    printHeader(db, epic, config);

    const { orgId } = await connectedOrganization(t1, epic, { persistentAccess: true });
    const fhir1 = t1.app.get(FhirClientService).forOrganization(orgId);

    await overhead(t1, epic, orgId, fhir1, config);
    epic.clearLog();

    console.log(`\n2. Refresh storm: concurrent read('Patient') calls on an expired access token`);
    console.log(`   (the fake expired its tokens and the stored expiry was moved 60 s into the past)\n`);
    const rows: string[][] = [];
    const notes: string[] = [];
    const single = await storm('1 instance', t1, orgId, epic, [
      { app: t1, client: fhir1, reads: STORM_READS },
    ]);
    rows.push(single.row);
    notes.push(...single.notes);

    // A second instance on the same database. Both stay open until the end: passport is a process-wide
    // singleton, and closing one Nest app would break sign-in on the other.
    const t2 = await createTestApp({ databaseUrl: db.url });
    apps.push(t2);
    const fhir2 = t2.app.get(FhirClientService).forOrganization(orgId);
    // Warm: its pool and sockets exist, as in an instance that has been running.
    await runLoad(() => fhir2.read('Patient', SEED.camila), 100, 10);
    const double = await storm('2 instances', t1, orgId, epic, [
      { app: t1, client: fhir1, reads: STORM_READS / 2 },
      { app: t2, client: fhir2, reads: STORM_READS / 2 },
    ]);
    rows.push(double.row);
    notes.push(...double.notes);
    console.log(
      table(
        [
          'scenario',
          'reads',
          'ok',
          'failed',
          'refresh calls',
          'FHIR 401s',
          'cred. queries',
          'total ms',
          'p50 ms',
          'p99 ms',
          'max ms',
          'version',
        ],
        rows,
      ),
    );
    for (const note of notes) console.log(`  ${note}`);
    console.log('\n  Target: exactly 1 refresh call per storm, every read ok, no 401 from Epic.');
    console.log('  cred. queries: TokenStoreService.findActive calls during the storm, all instances.');

    printClosing(started);
    return 0;
  } finally {
    await cleanup();
  }
}

function printHeader(db: BenchDatabase, epic: FakeEpic, config: AppConfig): void {
  printEnvironment('FhirClient benchmark', db, config.env.DATABASE_POOL_SIZE);
  console.log(`  Fake Epic in this process: ${epic.fhirBase}`);
  console.log(
    `  TOKEN_REFRESH_MARGIN_SECONDS=${config.env.TOKEN_REFRESH_MARGIN_SECONDS}, ` +
      `EPIC_HTTP_TIMEOUT_MS=${config.env.EPIC_HTTP_TIMEOUT_MS}`,
  );
}

/** Part 1: FhirClient.read against a bare axios GET of the same URL with the same token. */
async function overhead(
  t: TestApp,
  epic: FakeEpic,
  orgId: string,
  fhir: FhirClient,
  config: AppConfig,
): Promise<void> {
  const token = latestAccessToken(epic);
  const url = `${epic.fhirBase}/Patient/${encodeURIComponent(SEED.camila)}`;
  // The options of FhirClient's own instance (fhir-client.module.ts): maxRedirects 0 makes axios use
  // plain http instead of follow-redirects, and the timeout arms a timer per request.
  const bare = axios.create({
    timeout: config.env.EPIC_HTTP_TIMEOUT_MS,
    maxRedirects: 0,
    headers: { Accept: 'application/fhir+json', Authorization: `Bearer ${token}` },
  });
  const tasks: Record<'bare axios' | 'FhirClient', Task> = {
    'bare axios': () => bare.get(url).then((response) => response.data),
    FhirClient: () => fhir.read('Patient', SEED.camila),
  };
  await sameAnswer(tasks['bare axios'], tasks.FhirClient);

  console.log(`\n1. Per-request overhead: read('Patient', SEED.camila) against a bare axios GET of`);
  console.log(`   ${url} with a fixed bearer token.`);
  console.log(
    `   ${count(REQUESTS)} requests per client and concurrency after ${WARMUP} warm-up requests, ` +
      `in ${ROUNDS} alternating rounds.\n`,
  );
  const rows: string[][] = [];
  const verdicts: string[] = [];
  let addedAtOne = NaN;
  for (const concurrency of CONCURRENCIES) {
    const results = await compare(tasks, REQUESTS, concurrency, WARMUP, ROUNDS);
    const bareP50 = summary(results['bare axios']).p50;
    for (const [name, result] of Object.entries(results)) {
      const s = summary(result);
      const isFhir = name === 'FhirClient';
      rows.push([
        String(concurrency),
        name,
        ms(s.p50),
        ms(s.p99),
        count(s.perSecond),
        count(result.errors),
        isFhir ? `+${ms(s.p50 - bareP50)}` : '',
        isFhir ? `${(s.p50 / bareP50).toFixed(2)}×` : '',
      ]);
    }
    const fhirP50 = summary(results.FhirClient).p50;
    const ratio = fhirP50 / bareP50;
    if (concurrency === 1) addedAtOne = fhirP50 - bareP50;
    verdicts.push(`${ratio <= TARGET_RATIO ? 'met' : 'missed'} at concurrency ${concurrency}`);
  }
  console.log(
    table(
      ['concurrency', 'client', 'p50 ms', 'p99 ms', 'req/s', 'errors', 'added p50 ms', 'p50 ratio'],
      rows,
    ),
  );
  console.log(`\n  Target FhirClient / bare axios ≤ ${TARGET_RATIO}× at p50: ${verdicts.join(', ')}.`);
  if (Number.isFinite(addedAtOne)) {
    console.log(
      `  At concurrency 1 FhirClient adds ${ms(addedAtOne)} ms at p50. If that cost is fixed, the ratio is ` +
        `≤ ${TARGET_RATIO}× against a server whose p50 is ≥ ${ms(addedAtOne / (TARGET_RATIO - 1))} ms.`,
    );
  }

  // Where FhirClient's time goes: its per-request credential query alone, and that query followed
  // by the bare GET (what the interceptors do, minus everything else).
  const tokens = t.app.get(TokenStoreService);
  const query: Task = () => tokens.findActive({ organizationId: orgId });
  const parts: Record<string, Task> = {
    'findActive (credential query)': query,
    'findActive, then bare GET': () => query().then(tasks['bare axios']),
    'SELECT 1 (pool round trip)': () => t.dataSource.query('SELECT 1'),
  };
  const breakdown: string[][] = [];
  for (const concurrency of CONCURRENCIES) {
    const results = await compare(parts, BREAKDOWN_CALLS, concurrency, WARMUP / 2, ROUNDS);
    for (const [name, result] of Object.entries(results)) {
      const s = summary(result);
      breakdown.push([String(concurrency), name, ms(s.p50), ms(s.p99), count(s.perSecond)]);
    }
  }
  console.log(`\n  Where the time goes (${count(BREAKDOWN_CALLS)} calls each, same method):\n`);
  console.log(table(['concurrency', 'call', 'p50 ms', 'p99 ms', 'calls/s'], breakdown));
}

/** Both clients must read the same Patient, or the comparison means nothing. */
async function sameAnswer(bare: Task, fhir: Task): Promise<void> {
  const [a, b] = (await Promise.all([bare(), fhir()])) as { resourceType?: string; id?: string }[];
  if (a?.resourceType !== 'Patient' || a.id !== SEED.camila || b?.id !== a.id) {
    throw new Error(`The clients disagree: bare read ${a?.resourceType}/${a?.id}, FhirClient ${b?.id}`);
  }
}

/** The access token of the latest token response: the one the org's connection stored. */
function latestAccessToken(epic: FakeEpic): string {
  const body = epic.requests('token').at(-1)?.responseBody as { access_token?: unknown } | undefined;
  if (typeof body?.access_token !== 'string') throw new Error('The fake issued no access token');
  return body.access_token;
}

/**
 * Part 2: expires the token at the fake and in the database, then fires every part's reads at
 * once. Returns the table row.
 */
async function storm(
  scenario: string,
  t: TestApp,
  orgId: string,
  epic: FakeEpic,
  parts: { app: TestApp; client: FhirClient; reads: number }[],
): Promise<{ row: string[]; notes: string[] }> {
  epic.expireAccessTokens();
  await setStoredExpiry(t, orgId, -60_000);
  // The expiry was written behind the apps' backs (as time passing would): let their credential
  // caches (CREDENTIAL_CACHE_MS, 1 s by default) lapse, as they would have before a real expiry.
  await new Promise((resolve) => setTimeout(resolve, Number(process.env.CREDENTIAL_CACHE_MS ?? 1000) + 100));
  const versionBefore = await storedVersion(t, orgId);
  const refreshesBefore = epic.calls('token', { grantType: 'refresh_token' });
  const rejectedBefore = epic.requests('fhir').filter((r) => r.status === 401).length;

  const queries = countCredentialQueries(parts.map(({ app }) => app));
  const all = emptyResult();
  const started = performance.now();
  const results = await Promise.all(
    parts.map(({ client, reads }) => runLoad(() => client.read('Patient', SEED.camila), reads, reads)),
  );
  all.wallMs = performance.now() - started;
  const credentialQueries = queries.stop();
  for (const result of results) {
    all.latencies.push(...result.latencies);
    all.errors += result.errors;
    for (const [message, n] of result.failures) {
      all.failures.set(message, (all.failures.get(message) ?? 0) + n);
    }
  }

  const refreshes = epic.calls('token', { grantType: 'refresh_token' }) - refreshesBefore;
  const rejected = epic.requests('fhir').filter((r) => r.status === 401).length - rejectedBefore;
  const versionAfter = await storedVersion(t, orgId);
  const notes = [...all.failures].map(([message, n]) => `${scenario}: ${n} × ${message}`);
  if (parts.length > 1) {
    const each = parts.map(({ reads }, i) => `app ${i + 1} ${results[i].latencies.length}/${reads} ok`);
    notes.push(`${scenario}: ${each.join(', ')}`);
  }
  const s = summary(all);
  const row = [
    scenario,
    count(parts.reduce((sum, part) => sum + part.reads, 0)),
    count(all.latencies.length),
    count(all.errors),
    `${refreshes}${refreshes === 1 ? '' : ' (!)'}`,
    count(rejected),
    count(credentialQueries),
    ms(all.wallMs),
    ms(s.p50),
    ms(s.p99),
    ms(s.max),
    `${versionBefore} → ${versionAfter}`,
  ];
  return { row, notes };
}

/**
 * Counts TokenStoreService.findActive calls (FhirClient's per-request credential query) on each
 * app until `stop()`, by wrapping the method on the app's instance; `stop()` puts it back.
 */
function countCredentialQueries(apps: TestApp[]): { stop(): number } {
  let calls = 0;
  const restores = apps.map((app) => {
    const store = app.app.get(TokenStoreService);
    const original = store.findActive;
    store.findActive = (target) => {
      calls += 1;
      return original.call(store, target);
    };
    return () => {
      store.findActive = original;
    };
  });
  return {
    stop: () => {
      for (const restore of restores) restore();
      return calls;
    },
  };
}

async function storedVersion(t: TestApp, orgId: string): Promise<number> {
  const [row] = await t.dataSource.query<{ version: number }[]>(
    'SELECT version FROM epic_credential WHERE organization_id = $1 AND user_id IS NULL',
    [orgId],
  );
  return row?.version ?? NaN;
}
