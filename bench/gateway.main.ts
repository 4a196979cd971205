import { Agent, createServer, globalAgent, request as httpRequest, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';

import { Client } from 'pg';

import { ApiKeysService } from 'src/api-keys/api-keys.service';
import { FhirClientService } from 'src/fhir-client/fhir-client.service';
import { GatewayAuthenticator } from 'src/gateway/gateway-caller';
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
import { GetTarget, LoadWorker, pinApart, WorkerResult } from './load-worker';

const REQUESTS = 3_000;
const WARMUP = 300;
/** Part 1 with one caller and the upstream latency: about 30 s per target instead of 5 min. */
const SLOW_REQUESTS = 240;
const SLOW_WARMUP = 30;
const ROUNDS = 3;
const CONCURRENCIES = [1, 50];
/**
 * The fake's answer time in the judged case: a FHIR server across a network, not on loopback. Drawn
 * evenly from UPSTREAM_MS ± UPSTREAM_JITTER per request, as real answer times vary: a fixed time keeps
 * 50 closed-loop callers in lockstep once anything bunches them up, so that they then all reach the
 * app in the same millisecond, which no network does.
 */
const UPSTREAM_MS = Number(process.env.BENCH_UPSTREAM_MS ?? 100);
const UPSTREAM_JITTER = Number(process.env.BENCH_UPSTREAM_JITTER ?? 0.5);
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
  let proxy: Server | undefined;
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
      () => (proxy ? new Promise((resolve) => proxy!.close(resolve)) : undefined),
    ),
  );
  try {
    epic = await startFakeEpic();
    t = await createTestApp({ databaseUrl: db.url, env: APP_ENV });
    const appUrl = await listenOnLoopback(t);
    printEnvironment('FHIR gateway benchmark', db, 10);
    console.log(
      `  Fake Epic and the app (listening on ${appUrl}) share this process's main thread; part 1's load ` +
        'client runs in a worker thread, the other parts in the main thread.',
    );
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
    proxy = bareProxy(`${epic.fhirBase}/Patient/${SEED.camila}`, token);
    await new Promise<void>((resolve) => proxy!.listen(0, '127.0.0.1', resolve));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/`;
    const fhirHeaders = { Accept: 'application/fhir+json' };
    const targets: Record<string, GetTarget> = {
      [DIRECT]: {
        url: `${epic.fhirBase}/Patient/${SEED.camila}`,
        headers: { ...fhirHeaders, Authorization: `Bearer ${token}` },
      },
      [GATEWAY]: {
        url: `${appUrl}${org.base}/Patient/${SEED.camila}`,
        headers: { ...fhirHeaders, Authorization: `Bearer ${key}` },
      },
      [HEALTH]: { url: `${appUrl}/health/live`, headers: {} },
      [BARE]: { url: bareUrl, headers: {} },
      [PROXY]: { url: proxyUrl, headers: fhirHeaders },
    };
    const inProcess =
      (target: GetTarget): Get =>
      () =>
        get(agent, target.url, target.headers);
    await sameAnswer(inProcess(targets[DIRECT]), inProcess(targets[GATEWAY]));
    await inProcess(targets[PROXY])();

    const results = await overhead(epic, targets);
    await statementsPerRequest(inProcess(targets[GATEWAY]), results);
    await steps(
      t,
      inProcess(targets[GATEWAY]),
      percentile(results.get('0/1')![DIRECT].latencies, 50),
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

interface Measured extends WorkerResult {
  /** CPU time of the app's thread (the app and the fake; not the load client), µs. */
  appCpuMicros: number;
  /** How busy the app's event loop was (Node's event loop utilization), summed over the rounds. */
  busy: number;
  /**
   * Per call to the fake, its latency minus the time the fake waited before answering it (its
   * drawn upstream latency, FakeEpicRequest.latencyMs): the time the call spent anywhere else.
   */
  own: number[];
  /**
   * The same without each run's first two waves of calls (2 × concurrency): they find the gateway's
   * caches (key, organization, credential) expired and its throttle gate gone idle while the other
   * targets ran, and wait for the reloads and the first lease together.
   */
  ownSteady: number[];
}

/** The query parameter that numbers part 1's calls, for the fake's log to say what each waited. */
const MARK = 'bench_seq';

const DIRECT = 'direct GET to the fake';
const GATEWAY = 'gateway read';
const HEALTH = 'GET /health/live';
const BARE = 'bare Node http server';
const PROXY = 'bare Node proxy';

/**
 * The floor of any proxy written in Node on this machine: an `http` server in this process that
 * sends every request to `url` (with the request's query) with a fixed token on a keep-alive agent
 * and pipes the answer back,
 * and does nothing else (no key, throttle, record, rewriting or error handling). What the gateway
 * adds over it is what its work costs; what it adds over the direct GET is the floor.
 */
function bareProxy(url: string, token: string): Server {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const headers = { Accept: 'application/fhir+json', Authorization: `Bearer ${token}` };
  const server = createServer((req, res) => {
    req.resume();
    const query = req.url?.indexOf('?') ?? -1;
    const upstream = httpRequest(
      `${url}${query === -1 ? '' : req.url!.slice(query)}`,
      { agent, headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, { 'Content-Type': String(answer.headers['content-type']) });
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    upstream.end();
  });
  server.on('close', () => agent.destroy());
  return server;
}

/**
 * Part 1: each target at each upstream latency and concurrency, in alternating rounds, the load
 * client in a thread of its own (load-worker.ts). At latency 0 the fake answers at once on loopback
 * and shares the app's thread: a worst case in which every microsecond of the app's CPU queues the
 * next request. At UPSTREAM_MS the fake answers after a timer, as a FHIR server across a network
 * does; that is the case the target is judged in.
 */
async function overhead(
  epic: FakeEpic,
  targets: Record<string, GetTarget>,
): Promise<Map<string, Record<string, Measured>>> {
  console.log(
    `\n1. Per-request cost: ${count(REQUESTS)} requests per client, latency and concurrency after ${WARMUP} ` +
      `(${SLOW_REQUESTS} after ${SLOW_WARMUP} for one caller at ${UPSTREAM_MS} ms) ` +
      `warm-up requests, in ${ROUNDS} alternating rounds (closed loop, keep-alive sockets, the load client ` +
      `in a worker thread). Upstream latency: the fake answers FHIR requests at once (0) or after ` +
      `${UPSTREAM_MS} ms ± ${Math.round(UPSTREAM_JITTER * 100)}%, drawn evenly per request, the same ` +
      `seeded draw for every run ` +
      `(FakeEpic.answerFhirAfter; BENCH_UPSTREAM_MS and BENCH_UPSTREAM_JITTER to change it).\n`,
  );
  const load = new LoadWorker();
  const pinned = await pinApart(load);
  console.log(`  Threads: ${pinned.description}.\n`);
  const all = new Map<string, Record<string, Measured>>();
  const rows: string[][] = [];
  const verdicts: string[] = [];
  try {
    for (const latency of [0, UPSTREAM_MS]) {
      // Each run restarts the same seeded draw: every target meets the same answer times.
      const upstream = (): void =>
        epic.answerFhirAfter(
          latency === 0
            ? 0
            : { min: latency * (1 - UPSTREAM_JITTER), max: latency * (1 + UPSTREAM_JITTER), seed: 1 },
        );
      const names = latency === 0 ? [DIRECT, GATEWAY, PROXY, HEALTH, BARE] : [DIRECT, GATEWAY, PROXY];
      for (const concurrency of CONCURRENCIES) {
        // One caller against a server that takes 100 ms makes 10 reads a second: fewer of them.
        const slow = latency > 0 && concurrency === 1;
        const [requests, warmup] = slow ? [SLOW_REQUESTS, SLOW_WARMUP] : [REQUESTS, WARMUP];
        for (const name of names) {
          upstream();
          await load.run(targets[name], warmup, concurrency);
        }
        const results = Object.fromEntries(
          names.map((n) => [
            n,
            {
              ...emptyResult(),
              clientCpuMicros: 0,
              marked: [],
              appCpuMicros: 0,
              busy: 0,
              own: [],
              ownSteady: [],
            },
          ]),
        ) as Record<string, Measured>;
        for (let round = 0; round < ROUNDS; round++) {
          const order = round % 2 === 0 ? names : [...names].reverse();
          for (const name of order) {
            upstream();
            epic.clearLog();
            const toFake = FAKE_BOUND.has(name);
            const cpu = process.threadCpuUsage();
            const loop = performance.eventLoopUtilization();
            await load.run(
              targets[name],
              requests / ROUNDS,
              concurrency,
              results[name],
              toFake ? MARK : undefined,
            );
            const used = process.threadCpuUsage(cpu);
            results[name].appCpuMicros += used.user + used.system;
            results[name].busy += performance.eventLoopUtilization(loop).utilization / ROUNDS;
            if (toFake) ownTimes(epic, results[name], concurrency);
          }
        }
        all.set(`${latency}/${concurrency}`, results);
        const p50 = (name: string): number => percentile(results[name].latencies, 50);
        const ownP50 = (name: string): number => percentile(results[name].own, 50);
        const ownMean = (name: string): number => mean(results[name].own);
        const base: Record<string, string | undefined> = {
          [GATEWAY]: DIRECT,
          [PROXY]: DIRECT,
          [HEALTH]: BARE,
          [DIRECT]: BARE,
        };
        for (const name of names) {
          const r = results[name];
          const against = base[name] && names.includes(base[name]) ? p50(base[name]) : NaN;
          rows.push([
            String(latency),
            String(concurrency),
            name,
            ms(p50(name)),
            ms(percentile(r.latencies, 95)),
            FAKE_BOUND.has(name) ? ms(ownP50(name)) : '',
            count((r.latencies.length / r.wallMs) * 1000),
            count(r.errors),
            perRequest(r.appCpuMicros, r),
            `${Math.round(r.busy * 100)}%`,
            perRequest(r.clientCpuMicros, r),
            ...(name === GATEWAY || name === PROXY
              ? [
                  signed(ownP50(name) - ownP50(DIRECT)),
                  signed(ownMean(name) - ownMean(DIRECT)),
                  signed(p50(name) - p50(DIRECT)),
                ]
              : ['', '', '']),
            Number.isFinite(against) ? `${(p50(name) / against).toFixed(2)}×` : '',
          ]);
          for (const [message, n] of r.failures) {
            verdicts.push(`(!) ${name} at latency ${latency}, concurrency ${concurrency}: ${n} × ${message}`);
          }
        }
        const added = ownP50(GATEWAY) - ownP50(DIRECT);
        const ratio = p50(GATEWAY) / p50(DIRECT);
        const judged = latency === UPSTREAM_MS && concurrency === 50;
        verdicts.push(
          `latency ${latency} ms, concurrency ${concurrency}: added p50 ${ms(added)} ms ` +
            `${added <= TARGET_ADDED_MS ? '✓' : '✗'} (≤ ${TARGET_ADDED_MS} ms), p50 ratio ${ratio.toFixed(2)}× ` +
            `${ratio <= TARGET_RATIO ? '✓' : '✗'} (≤ ${TARGET_RATIO}×)` +
            (judged ? '  ← the target' : '  (for information)'),
        );
        const own = (name: string, steady = false): string =>
          [50, 90, 99]
            .map((p) => ms(percentile(steady ? results[name].ownSteady : results[name].own, p)))
            .join(' / ');
        verdicts.push(
          `latency ${latency} ms, concurrency ${concurrency}: own time p50 / p90 / p99 ms: gateway ${own(GATEWAY)}, ` +
            `bare proxy ${own(PROXY)}, direct GET ${own(DIRECT)}; without each run's first ${2 * concurrency} ` +
            `calls: gateway ${own(GATEWAY, true)}, bare proxy ${own(PROXY, true)}, direct GET ${own(DIRECT, true)}`,
        );
        verdicts.push(
          `latency ${latency} ms, concurrency ${concurrency}: added mean ${ms(ownMean(GATEWAY) - ownMean(DIRECT))} ms ` +
            `(${ms(mean(results[GATEWAY].ownSteady) - mean(results[DIRECT].ownSteady))} without each run's first calls), ` +
            `Δ of the p50s ${ms(p50(GATEWAY) - p50(DIRECT))} ms; the floor, a bare Node proxy, adds ` +
            `${ms(ownP50(PROXY) - ownP50(DIRECT))} ms (p50), the gateway ${ms(added - (ownP50(PROXY) - ownP50(DIRECT)))} ms over it`,
        );
        for (const name of FAKE_BOUND) {
          const r = results[name];
          if (r.own.length !== r.latencies.length) {
            verdicts.push(
              `(!) ${name}: ${r.latencies.length - r.own.length} calls not found in the fake's log`,
            );
          }
        }
        if (latency === 0) {
          verdicts.push(
            `latency 0 ms, concurrency ${concurrency}: /health/live p50 ${ms(p50(HEALTH))} ms = ` +
              `${(p50(HEALTH) / p50(BARE)).toFixed(2)}× the bare Node server`,
          );
        }
      }
    }
  } finally {
    epic.answerFhirAfter(0);
    await load.close();
    pinned.unpin();
  }
  console.log(
    table(
      [
        'latency ms',
        'conc.',
        'client',
        'p50 ms',
        'p95 ms',
        'own p50',
        'req/s',
        'errors',
        'app CPU ms/req',
        'app busy',
        'client CPU ms/req',
        'added p50',
        'added mean',
        'Δ p50',
        'p50 ratio',
      ],
      rows,
    ),
  );
  console.log(
    "\n  own p50: the p50 over the calls of each one's latency minus the time the fake waited before" +
      "\n  answering it (its drawn upstream latency, from the fake's log), i.e. the time it spent anywhere" +
      "\n  else; added p50: the gateway's (or the proxy's) own p50 minus the direct GET's, the target;" +
      '\n  added mean: the same with means; Δ p50: the difference of the two p50s of latency, which with' +
      '\n  upstream latencies spread over a range much wider than what a proxy adds measures its mean, not' +
      '\n  its p50 (bench/README.md).' +
      '\n  p50 ratio: the gateway and the bare proxy over the direct GET; the direct GET and /health/live over' +
      '\n  the bare Node server. bare Node proxy: an http server in this process that only pipes each request' +
      '\n  to the fake with the fixed token (no key, throttle, record or rewriting), the floor of a Node proxy.' +
      "\n  app CPU ms/req: the CPU time of the app's thread per request (the app and the fake; the gateway's" +
      "\n  minus the direct GET's is the gateway's own); app busy: how much of the time the app's event loop" +
      "\n  was running code (Node's event loop utilization); client CPU: the load thread's.\n",
  );
  for (const line of verdicts) console.log(`  ${line}`);
  return all;
}

/** The fake's three targets: their calls are numbered (MARK) and matched with the fake's log. */
const FAKE_BOUND = new Set([DIRECT, GATEWAY, PROXY]);

/**
 * Adds the last run's own times (latency minus the fake's wait, per call) to `result`, matching
 * each call with the fake's log entry by its number, and clears the log for the next run.
 */
function ownTimes(epic: FakeEpic, result: Measured, concurrency: number): void {
  const waited = new Map<number, number>();
  for (const entry of epic.requests('fhir')) {
    const seq = entry.query[MARK];
    if (seq !== undefined) waited.set(Number(seq), entry.latencyMs ?? 0);
  }
  epic.clearLog();
  for (const [seq, latency] of result.marked) {
    const wait = waited.get(seq);
    if (wait === undefined) continue;
    result.own.push(latency - wait);
    if (seq >= 2 * concurrency) result.ownSteady.push(latency - wait);
  }
}

/** A difference in ms with its sign: +0.42, -1.20. */
const signed = (value: number): string => (value < 0 ? `-${ms(-value)}` : `+${ms(value)}`);

const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);

function perRequest(micros: number, result: LoadResult): string {
  return (micros / 1000 / Math.max(1, result.latencies.length + result.errors)).toFixed(3);
}

/** SQL statements the app sends per gateway read (pg Client.prototype.query, counted). */
async function statementsPerRequest(gateway: Get, all: Map<string, Record<string, Measured>>): Promise<void> {
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
  for (const [key, results] of all) {
    const [latency, concurrency] = key.split('/');
    const cpu = (name: string): number =>
      results[name].appCpuMicros / 1000 / Math.max(1, results[name].latencies.length);
    console.log(
      `  latency ${latency} ms, concurrency ${concurrency}: the gateway's own CPU ≈ ` +
        `${(cpu(GATEWAY) - cpu(DIRECT)).toFixed(3)} ms/read (gateway read minus direct GET, app thread)` +
        (results[HEALTH]
          ? `; /health/live costs ${(cpu(HEALTH) - cpu(BARE)).toFixed(3)} ms more than the bare Node server`
          : ''),
    );
  }
}

/**
 * The gateway's steps at concurrency 1, timed by wrapping each method on its class for the run:
 * their mean per read, and the rest of the client's latency (HTTP parsing, GatewayEntryService's
 * way in before Express, the client itself).
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
  wrap('GatewayAuthenticator.callerOf (the API key)', GatewayAuthenticator.prototype, 'callerOf');
  wrap('  ApiKeysService.authenticate', ApiKeysService.prototype, 'authenticate');
  wrap('  OrganizationsService.findBySlug', OrganizationsService.prototype, 'findBySlug');
  wrap('GatewayService.forward (until the answer is streamed)', GatewayService.prototype, 'forward');
  wrap('  GatewayThrottleService.acquire', GatewayThrottleService.prototype, 'acquire');
  wrap("  FhirClientService.forward (until the answer's head)", FhirClientService.prototype, 'forward');
  const n = 1_000;
  const result = await runLoad(gateway, n, 1);
  for (const restore of restores) restore();
  const row = (label: string, values: number[], perRead = values.length): string[] => [
    label,
    (values.reduce((a, b) => a + b, 0) / Math.max(1, perRead)).toFixed(3),
    percentile(values, 50).toFixed(3),
  ];
  const rows = [...spent].map(([label, values]) => row(label, values, n));
  const guard = mean(spent.get('GatewayAuthenticator.callerOf (the API key)') ?? []);
  const forward = mean(spent.get('GatewayService.forward (until the answer is streamed)') ?? []);
  rows.push([
    'the rest (HTTP, the way in, the client)',
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
  // Warm-up, unmeasured: a 20 MB Bundle through each path. Part 1's short reads go out whole, so the
  // gateway's streamed path is still cold here, and cold code under a full GC every 10 ms stays slow
  // (measured: 6–28 s instead of 1.5 s for the gateway's 50 MB after a 2 MB warm-up or none).
  for (const [, url, bearer] of runs) {
    epic.serveLargeSearch('Observation', { entries: 20_000, bytesPerEntry: LARGE_BYTES_PER_ENTRY });
    try {
      await get(globalAgent, url, { Authorization: `Bearer ${bearer}` });
    } finally {
      epic.serveLargeSearch('Observation', undefined);
    }
  }
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
