import { Agent, createServer, request as httpRequest, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';

import { Client } from 'pg';

import { ApiKeysService } from 'src/api-keys/api-keys.service';
import { FhirClientService } from 'src/fhir-client/fhir-client.service';
import { ApiKeyGuard } from 'src/gateway/api-key.guard';
import { GatewayService } from 'src/gateway/gateway.service';
import { GatewayThrottleService } from 'src/gateway/throttle/gateway-throttle.service';
import { OrganizationsService } from 'src/organizations/organizations.service';
import { Role } from 'src/users/user.types';

import { setStoredExpiry } from 'test/factories/epic-connection';
import { signIn, TestFactory } from 'test/factories';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, listenOnLoopback, TestApp } from 'test/setup/test-app';

import { createApiKey, gatewayOrganization } from 'test/e2e/gateway/gateway-harness';
import { printClosing } from './app-log';
import { cleanupOnce, closeAll, createBenchDatabase, printEnvironment } from './bench-db';
import { count, emptyResult, LoadResult, ms, percentile, runLoad, table } from './load';

const REQUESTS = 3_000;
const WARMUP = 300;
const ROUNDS = 3;
const CONCURRENCIES = [1, 50];
const STORM_READS = 1_000;
const TARGET_ADDED_MS = 1;
const TARGET_RATIO = 1.15;
const LARGE_ENTRIES = 50_000;
const LARGE_BYTES_PER_ENTRY = 1_000;
const TARGET_RSS_MB = 20;
const MB = 1024 * 1024;

/**
 * The bench raises the organization's limits (as a root admin, PUT …/gateway-limits) to the
 * largest allowed, so that the throttle never caps the measurement, and the queue (env) so that
 * 1,000 reads started at once wait for their lease instead of getting 429.
 */
const BENCH_LIMITS = { ratePerSecond: 10_000, concurrency: 1_000 };
const APP_ENV: Record<string, string> = {
  GATEWAY_QUEUE_MAX: '5000',
  GATEWAY_QUEUE_WAIT_MS: '30000',
  // An experiment: GATEWAY_BENCH_LOG_LEVEL=warn runs the app without its per-request log lines.
  ...(process.env.GATEWAY_BENCH_LOG_LEVEL ? { LOG_LEVEL: process.env.GATEWAY_BENCH_LOG_LEVEL } : {}),
};

type Get = () => Promise<number>;

/** Runs the benchmark and prints its figures; resolves to the exit code. */
export async function main(): Promise<number> {
  const started = performance.now();
  const db = await createBenchDatabase();
  if (!db) return 1;
  let t: TestApp | undefined;
  let epic: FakeEpic | undefined;
  let bare: Server | undefined;
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const cleanup = cleanupOnce('the app', () =>
    closeAll(
      db,
      () => {
        agent.destroy();
        return undefined;
      },
      () => t?.close(),
      () => epic?.close(),
      () => (bare ? new Promise((resolve) => bare!.close(resolve)) : undefined),
    ),
  );
  try {
    epic = await startFakeEpic();
    t = await createTestApp({ databaseUrl: db.url, env: APP_ENV });
    const appUrl = await listenOnLoopback(t);
    printEnvironment('FHIR gateway benchmark', db, 10);
    console.log(`  Fake Epic, the app (listening on ${appUrl}) and the load client share this process.`);
    console.log(
      `  Load average at start: ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')} ` + '(other work on the machine shows in every figure; compare runs on an idle machine).',
    );

    const org = await gatewayOrganization(t, epic);
    const key = (await createApiKey(org)).secret;
    const factory = new TestFactory(t);
    const root = await signIn(t, await factory.user(Role.RootAdmin, null));
    const limits = await root.agent
      .put(`/api/organizations/${org.orgId}/gateway-limits`)
      .set('x-csrf-token', root.csrf)
      .send(BENCH_LIMITS)
      .expect(200);
    console.log(
      `  Gateway limits raised for the bench (PUT /api/organizations/:id/gateway-limits as a root admin): ` +
        `${JSON.stringify(limits.body)}; GATEWAY_QUEUE_MAX=${APP_ENV.GATEWAY_QUEUE_MAX}, ` +
        `GATEWAY_QUEUE_WAIT_MS=${APP_ENV.GATEWAY_QUEUE_WAIT_MS}.`,
    );
    console.log(
      `  The throttle's ±10% target is the gateway-throttle section (npm run bench -- gateway-throttle).`,
    );

    bare = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"status":"ok"}');
    });
    await new Promise<void>((resolve) => bare!.listen(0, '127.0.0.1', resolve));
    const bareUrl = `http://127.0.0.1:${(bare.address() as AddressInfo).port}/`;

    const token = latestAccessToken(epic);
    const fhirHeaders = { Accept: 'application/fhir+json' };
    const tasks: Record<string, Get> = {
      'direct GET to the fake': () =>
        get(agent, `${epic!.fhirBase}/Patient/${SEED.camila}`, {
          ...fhirHeaders,
          Authorization: `Bearer ${token}`,
        }),
      'gateway read': () =>
        get(agent, `${appUrl}${org.base}/Patient/${SEED.camila}`, {
          ...fhirHeaders,
          Authorization: `Bearer ${key}`,
        }),
      'GET /health/live': () => get(agent, `${appUrl}/health/live`, {}),
      'bare Node http server': () => get(agent, bareUrl, {}),
    };
    await sameAnswer(tasks['direct GET to the fake'], tasks['gateway read']);

    const results = await overhead(tasks);
    await statementsPerRequest(tasks['gateway read'], results);
    await steps(
      t,
      tasks['gateway read'],
      percentile(results.get(1)!['direct GET to the fake'].latencies, 50),
      org.slug,
    );

    epic.clearLog();
    await refreshStorm(t, epic, org.orgId, `${appUrl}${org.base}/Patient/${SEED.camila}`, key);
    // The storm expired the fixed token: the direct read takes the refreshed one.
    const refreshed = latestAccessToken(epic);
    epic.clearLog();
    await largeBundle(
      epic,
      `${epic.fhirBase}/Observation`,
      `${appUrl}${org.base}/Observation`,
      refreshed,
      key,
    );

    printClosing(started);
    return 0;
  } finally {
    await cleanup();
  }
}

/** One GET on a keep-alive agent: resolves with the status once the body has been read. */
function get(agent: Agent, url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent, headers }, (res) => {
      res.on('data', () => undefined);
      res.on('end', () => {
        if (res.statusCode === 200) resolve(200);
        else reject(new Error(`HTTP ${res.statusCode}`));
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** The direct read and the gateway's must both answer 200 (`get` rejects otherwise) before they are compared. */
async function sameAnswer(direct: Get, gateway: Get): Promise<void> {
  await direct();
  await gateway();
}

function latestAccessToken(epic: FakeEpic): string {
  const body = epic.requests('token').at(-1)?.responseBody as { access_token?: unknown } | undefined;
  if (typeof body?.access_token !== 'string') throw new Error('The fake issued no access token');
  return body.access_token;
}

interface Measured extends LoadResult {
  cpuMicros: number;
}

/** Part 1: each task at each concurrency, in alternating rounds, with this process's CPU time. */
async function overhead(tasks: Record<string, Get>): Promise<Map<number, Record<string, Measured>>> {
  const names = Object.keys(tasks);
  console.log(
    `\n1. Per-request cost: ${count(REQUESTS)} requests per client and concurrency after ${WARMUP} warm-up ` +
      `requests, in ${ROUNDS} alternating rounds (closed loop, keep-alive sockets).\n`,
  );
  const all = new Map<number, Record<string, Measured>>();
  const rows: string[][] = [];
  const verdicts: string[] = [];
  for (const concurrency of CONCURRENCIES) {
    for (const name of names) await runLoad(tasks[name], WARMUP, concurrency);
    const results = Object.fromEntries(names.map((n) => [n, { ...emptyResult(), cpuMicros: 0 }])) as Record<
      string,
      Measured
    >;
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? names : [...names].reverse();
      for (const name of order) {
        const cpu = process.cpuUsage();
        await runLoad(tasks[name], REQUESTS / ROUNDS, concurrency, results[name]);
        const used = process.cpuUsage(cpu);
        results[name].cpuMicros += used.user + used.system;
      }
    }
    all.set(concurrency, results);
    const direct = percentile(results['direct GET to the fake'].latencies, 50);
    const health = percentile(results['GET /health/live'].latencies, 50);
    const nodeBare = percentile(results['bare Node http server'].latencies, 50);
    for (const name of names) {
      const r = results[name];
      const p50 = percentile(r.latencies, 50);
      const gateway = name === 'gateway read';
      const vsBase =
        name === 'gateway read'
          ? direct
          : name === 'GET /health/live'
            ? nodeBare
            : name === 'direct GET to the fake'
              ? nodeBare
              : NaN;
      rows.push([
        String(concurrency),
        name,
        ms(p50),
        ms(percentile(r.latencies, 95)),
        count((r.latencies.length / r.wallMs) * 1000),
        count(r.errors),
        (r.cpuMicros / 1000 / Math.max(1, r.latencies.length)).toFixed(3),
        gateway ? `+${ms(p50 - direct)}` : '',
        Number.isFinite(vsBase) ? `${(p50 / vsBase).toFixed(2)}×` : '',
      ]);
      for (const [message, n] of r.failures) {
        verdicts.push(`(!) ${name} at ${concurrency}: ${n} × ${message}`);
      }
    }
    const gw = percentile(results['gateway read'].latencies, 50);
    const added = gw - direct;
    const ratio = gw / direct;
    verdicts.push(
      `concurrency ${concurrency}: added p50 ${ms(added)} ms ${added <= TARGET_ADDED_MS ? '✓' : '✗'} (≤ ${TARGET_ADDED_MS} ms), ` +
        `p50 ratio ${ratio.toFixed(2)}× ${ratio <= TARGET_RATIO ? '✓' : '✗'} (≤ ${TARGET_RATIO}×)` +
        (concurrency === 50 ? '  ← the target' : '  (for information)'),
    );
    verdicts.push(
      `concurrency ${concurrency}: /health/live p50 ${ms(health)} ms = ${(health / nodeBare).toFixed(2)}× the bare Node ` +
        `server; gateway p50 over /health/live: ${(gw / health).toFixed(2)}×`,
    );
  }
  console.log(
    table(
      ['conc.', 'client', 'p50 ms', 'p95 ms', 'req/s', 'errors', 'CPU ms/req', 'added p50', 'p50 ratio'],
      rows,
    ),
  );
  console.log(
    '\n  p50 ratio: the gateway over the direct GET; the direct GET and /health/live over the bare Node server.' +
      "\n  CPU ms/req: this process's CPU time (client, app and fake together) per request; the gateway's minus" +
      "\n  the direct GET's is the gateway's own CPU per request.\n",
  );
  for (const line of verdicts) console.log(`  ${line}`);
  return all;
}

/** SQL statements the app sends per gateway read (pg Client.prototype.query, counted). */
async function statementsPerRequest(gateway: Get, all: Map<number, Record<string, Measured>>): Promise<void> {
  const seen = new Map<string, number>();
  const prototype = Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = prototype.query;
  prototype.query = function (this: unknown, ...args: unknown[]) {
    const first = args[0] as string | { text?: string } | undefined;
    const sql = (typeof first === 'string' ? first : String(first?.text)).replace(/\s+/g, ' ').slice(0, 90);
    seen.set(sql, (seen.get(sql) ?? 0) + 1);
    return original.apply(this, args);
  };
  const n = 500;
  try {
    await runLoad(gateway, n, 1);
  } finally {
    prototype.query = original;
  }
  const total = [...seen.values()].reduce((a, b) => a + b, 0);
  console.log(
    `\n  Where the gateway's time goes: ${(total / n).toFixed(2)} SQL statements per read (${n} reads, concurrency 1):`,
  );
  for (const [sql, c] of [...seen].sort((a, b) => b[1] - a[1]).slice(0, 6)) {
    console.log(`    ${(c / n).toFixed(3)} × ${sql}`);
  }
  for (const [concurrency, results] of all) {
    const cpu = (name: string): number =>
      results[name].cpuMicros / 1000 / Math.max(1, results[name].latencies.length);
    console.log(
      `  concurrency ${concurrency}: the gateway's own CPU ≈ ${(cpu('gateway read') - cpu('direct GET to the fake')).toFixed(3)} ms/read ` +
        `(gateway read minus direct GET); /health/live costs ${(cpu('GET /health/live') - cpu('bare Node http server')).toFixed(3)} ms ` +
        'more than the bare Node server',
    );
  }
}

/**
 * The gateway's steps at concurrency 1, timed by wrapping each method on its class for the run:
 * their mean per read, and the rest of the client's latency (HTTP parsing, Express and Nest
 * middleware, routing, the request log, the client itself).
 */
async function steps(t: TestApp, gateway: Get, directP50: number, slug: string): Promise<void> {
  const spent = new Map<string, number[]>();
  const restores: (() => void)[] = [];
  const wrap = (label: string, proto: object, method: string): void => {
    const target = proto as Record<string, (...args: unknown[]) => unknown>;
    const original = target[method];
    target[method] = function (this: unknown, ...args: unknown[]) {
      const start = performance.now();
      const add = (): void => {
        const list = spent.get(label) ?? [];
        list.push(performance.now() - start);
        spent.set(label, list);
      };
      const out = original.apply(this, args);
      if (out instanceof Promise) return out.finally(add);
      add();
      return out;
    };
    restores.push(() => {
      target[method] = original;
    });
  };
  wrap('ApiKeyGuard.canActivate (all of the guard)', ApiKeyGuard.prototype, 'canActivate');
  wrap('  ApiKeysService.authenticate', ApiKeysService.prototype, 'authenticate');
  wrap('  OrganizationsService.findBySlug', OrganizationsService.prototype, 'findBySlug');
  wrap('GatewayService.forward (until the answer is streamed)', GatewayService.prototype, 'forward');
  wrap('  GatewayThrottleService.acquire', GatewayThrottleService.prototype, 'acquire');
  wrap("  FhirClientService.forward (until the answer's head)", FhirClientService.prototype, 'forward');
  const n = 1_000;
  const result = await runLoad(gateway, n, 1);
  for (const restore of restores) restore();
  const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
  const row = (label: string, values: number[], perRead = values.length): string[] => [
    label,
    (values.reduce((a, b) => a + b, 0) / Math.max(1, perRead)).toFixed(3),
    percentile(values, 50).toFixed(3),
  ];
  const rows = [...spent].map(([label, values]) => row(label, values, n));
  const guard = mean(spent.get('ApiKeyGuard.canActivate (all of the guard)') ?? []);
  const forward = mean(spent.get('GatewayService.forward (until the answer is streamed)') ?? []);
  rows.push([
    'the rest (HTTP, middleware, routing, request log, client)',
    (mean(result.latencies) - guard - forward).toFixed(3),
    '',
  ]);
  rows.push(row('client latency', result.latencies));
  rows.push(['direct GET to the fake (part 1)', '', directP50.toFixed(3)]);
  // Alone, right after: the organization lookup through the service and as one raw indexed query,
  // and the pool round trip (the floor of any query).
  const organizations = t.app.get(OrganizationsService);
  const alone = await runLoad(() => organizations.findBySlug(slug), n, 1);
  rows.push(row('findBySlug alone', alone.latencies));
  const raw = await runLoad(
    () => t.dataSource.query('SELECT * FROM organization WHERE slug = $1', [slug]),
    n,
    1,
  );
  rows.push(row('SELECT * FROM organization WHERE slug = $1 alone', raw.latencies));
  const select1 = await runLoad(() => t.dataSource.query('SELECT 1'), n, 1);
  rows.push(row('SELECT 1 alone (pool round trip)', select1.latencies));
  console.log(
    `\n  The gateway's steps at concurrency 1 (${count(n)} reads; ms per read: mean, and p50 of the step's calls):\n`,
  );
  console.log(table(['step', 'mean ms', 'p50 ms'], rows));
}

/** Part 2: expired tokens at the fake and in the database, then 1,000 gateway reads at once. */
async function refreshStorm(
  t: TestApp,
  epic: FakeEpic,
  orgId: string,
  url: string,
  key: string,
): Promise<void> {
  epic.expireAccessTokens();
  await setStoredExpiry(t, orgId, -60_000);
  // The expiry was written behind the app's back: let the credential cache lapse, as it would have.
  await new Promise((resolve) => setTimeout(resolve, Number(process.env.CREDENTIAL_CACHE_MS ?? 1000) + 100));
  const refreshesBefore = epic.calls('token', { grantType: 'refresh_token' });
  const tokenCallsBefore = epic.calls('token');
  const rejectedBefore = epic.requests('fhir').filter((r) => r.status === 401).length;
  // One socket per read: 1,000 requests really are in flight at once.
  const stormAgent = new Agent({ keepAlive: false, maxSockets: Infinity });
  const result = emptyResult();
  await runLoad(
    () => get(stormAgent, url, { Authorization: `Bearer ${key}`, Accept: 'application/fhir+json' }),
    STORM_READS,
    STORM_READS,
    result,
  );
  stormAgent.destroy();
  const refreshes = epic.calls('token', { grantType: 'refresh_token' }) - refreshesBefore;
  const tokenCalls = epic.calls('token') - tokenCallsBefore;
  const rejected = epic.requests('fhir').filter((r) => r.status === 401).length - rejectedBefore;
  console.log(
    `\n2. Refresh storm: ${count(STORM_READS)} concurrent gateway reads on an expired access token`,
  );
  console.log('   (the fake expired its tokens and the stored expiry was moved 60 s into the past)\n');
  console.log(
    table(
      [
        'reads',
        'ok',
        'failed',
        'token calls',
        'refresh grants',
        'FHIR 401s',
        'total ms',
        'p50 ms',
        'p95 ms',
        'max ms',
      ],
      [
        [
          count(STORM_READS),
          count(result.latencies.length),
          count(result.errors),
          String(tokenCalls),
          String(refreshes),
          count(rejected),
          ms(result.wallMs),
          ms(percentile(result.latencies, 50)),
          ms(percentile(result.latencies, 95)),
          ms(percentile(result.latencies, 100)),
        ],
      ],
    ),
  );
  for (const [message, n] of result.failures) console.log(`  (!) ${n} × ${message}`);
  console.log(
    `\n  Target: exactly 1 token call: ${tokenCalls === 1 ? '✓' : '✗'}` +
      `; every read ok: ${result.errors === 0 ? '✓' : '✗'}; no 401 from the fake: ${rejected === 0 ? '✓' : '✗'}`,
  );
}

/** Part 3: a 50 MB searchset streamed directly from the fake, then through the gateway; RSS sampled. */
async function largeBundle(
  epic: FakeEpic,
  directUrl: string,
  gatewayUrl: string,
  token: string,
  key: string,
): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  console.log(
    `\n3. A ${((LARGE_ENTRIES * LARGE_BYTES_PER_ENTRY) / 1e6).toFixed(0)} MB searchset Bundle (${count(LARGE_ENTRIES)} entries ` +
      `of ${LARGE_BYTES_PER_ENTRY} bytes, generated piece by piece by the fake), read as a stream;`,
  );
  console.log(
    `   RSS of this process sampled every 10 ms${gc ? ' after a full GC each time (--expose-gc)' : ' (no --expose-gc: garbage included)'}, over a baseline after GC.\n`,
  );
  const rows: string[][] = [];
  const peaks: Record<string, number> = {};
  const times: Record<string, number> = {};
  const runs: [string, string, string][] = [
    ['direct GET to the fake', directUrl, token],
    ['gateway', gatewayUrl, key],
  ];
  for (const [name, url, bearer] of runs) {
    const produced = epic.serveLargeSearch('Observation', {
      entries: LARGE_ENTRIES,
      bytesPerEntry: LARGE_BYTES_PER_ENTRY,
    });
    gc?.();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    let received = 0;
    let peakInFlight = 0;
    const sampler = setInterval(() => {
      gc?.();
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 10);
    const start = performance.now();
    let status: number;
    try {
      status = await new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          url,
          { headers: { Authorization: `Bearer ${bearer}`, Accept: 'application/fhir+json' } },
          (res) => {
            res.on('data', (chunk: Buffer) => {
              received += chunk.length;
              peakInFlight = Math.max(peakInFlight, produced() - received);
            });
            res.on('end', () => resolve(res.statusCode ?? 0));
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end();
      });
    } finally {
      clearInterval(sampler);
      epic.serveLargeSearch('Observation', undefined);
    }
    const elapsed = performance.now() - start;
    gc?.();
    const after = process.memoryUsage().rss;
    peaks[name] = (peak - baseline) / MB;
    times[name] = elapsed;
    rows.push([
      name,
      `${status}${status === 200 ? '' : ' (!)'}`,
      (received / 1e6).toFixed(1),
      ms(elapsed),
      ((received / MB / elapsed) * 1000).toFixed(0),
      (peakInFlight / MB).toFixed(1),
      peaks[name].toFixed(1),
      ((after - baseline) / MB).toFixed(1),
    ]);
  }
  console.log(
    table(
      ['path', 'status', 'MB received', 'ms', 'MB/s', 'peak in flight MB', 'peak RSS Δ MB', 'RSS Δ after MB'],
      rows,
    ),
  );
  const growth = peaks.gateway;
  console.log(
    `\n  Gateway: RSS growth ${growth.toFixed(1)} MB ${growth < TARGET_RSS_MB ? '✓' : '✗'} (< ${TARGET_RSS_MB} MB; ` +
      `the direct read's own is ${peaks['direct GET to the fake'].toFixed(1)} MB, the fake and the reader share this process); ` +
      `time ${(times.gateway / times['direct GET to the fake']).toFixed(2)}× the direct read.`,
  );
}
