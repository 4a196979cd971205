import { performance } from 'node:perf_hooks';

import { GatewayThrottleModule } from 'src/gateway/throttle/gateway-throttle.module';
import { GatewayThrottleService } from 'src/gateway/throttle/gateway-throttle.service';
import { batchSize, overshootBound } from 'src/gateway/throttle/throttle-policy';
import { Role } from 'src/users/user.types';

import { TestFactory } from 'test/factories';
import { createTestApp, TestApp } from 'test/setup/test-app';

import { burst, countStatements, startedWithin } from 'test/e2e/gateway-throttle/throttle-harness';
import { printClosing } from './app-log';
import { cleanupOnce, closeAll, createBenchDatabase, printEnvironment } from './bench-db';
import { count, table } from './load';

interface Scenario {
  label: string;
  ratePerSecond: number;
  concurrency: number;
  seconds: number;
  /** Closed-loop workers per instance, and how long each holds its slot (ms). */
  workers: number;
  holdMs: [number, number];
}

/**
 * The target: a per-organization rate limit held within ±10% with two instances. The first row is
 * the shipped default (20/s, 10 in flight); the others show the batch growing with the rate while
 * the statements per second stay flat; the last is bound by concurrency, not rate.
 */
const SCENARIOS: Scenario[] = [
  { label: 'default 20/s', ratePerSecond: 20, concurrency: 10, seconds: 10, workers: 15, holdMs: [20, 60] },
  { label: '100/s', ratePerSecond: 100, concurrency: 20, seconds: 5, workers: 30, holdMs: [5, 20] },
  { label: '500/s', ratePerSecond: 500, concurrency: 40, seconds: 5, workers: 60, holdMs: [2, 10] },
  {
    label: '1000/s, 4 in flight',
    ratePerSecond: 1000,
    concurrency: 4,
    seconds: 5,
    workers: 10,
    holdMs: [40, 80],
  },
];
const INSTANCES = 2;

/**
 * Each scenario runs on a fresh organization through two app instances on one database, as two
 * replicas: closed-loop workers on each acquire, hold, release. Printed per scenario: requests
 * started within the window against rate·T, the worst in flight across both, each instance's share,
 * 429s, and the throttle's SQL statements (per second per instance, and per request).
 */
export async function main(): Promise<number> {
  const started = performance.now();
  const db = await createBenchDatabase();
  if (!db) return 1;
  const apps: TestApp[] = [];
  const cleanup = cleanupOnce('the apps', () => closeAll(db, ...apps.map((app) => () => app.close())));
  try {
    for (let i = 0; i < INSTANCES; i++) {
      apps.push(await createTestApp({ databaseUrl: db.url, modules: [GatewayThrottleModule] }));
    }
    printEnvironment('Gateway throttle: two instances, one database', db, 10);
    const factory = new TestFactory(apps[0]);
    const root = await factory.user(Role.RootAdmin, null);
    const instances = apps.map((app) => app.app.get(GatewayThrottleService));
    const rows: string[][] = [];
    let failed = false;
    for (const scenario of SCENARIOS) {
      const org = (await factory.organization()).id;
      await instances[0].setOverride(root, org, {
        ratePerSecond: scenario.ratePerSecond,
        concurrency: scenario.concurrency,
      });
      const counters = apps.map((app) => countStatements(app.dataSource));
      const run = await burst({
        organizationId: org,
        instances,
        workers: scenario.workers,
        durationMs: scenario.seconds * 1000,
        holdMs: scenario.holdMs,
      });
      counters.forEach((c) => c.stop());
      const statements = counters.reduce((sum, c) => sum + c.byOrganization(org), 0);
      const expected = scenario.ratePerSecond * scenario.seconds;
      const within = startedWithin(run, scenario.seconds * 1000);
      const error = (within - expected) / expected;
      const rateBound = scenario.concurrency >= scenario.ratePerSecond * (scenario.holdMs[1] / 1000);
      const mark = (bad: boolean): string => (bad ? ' (!)' : '');
      const badRate = rateBound && Math.abs(error) > 0.1;
      const badSlots = run.maxInFlight > scenario.concurrency;
      failed ||= badRate || badSlots;
      rows.push([
        scenario.label,
        String(batchSize(scenario.ratePerSecond)),
        count(expected),
        count(within),
        rateBound ? `${error >= 0 ? '+' : ''}${(error * 100).toFixed(1)}%${mark(badRate)}` : 'slots bind',
        `±${((overshootBound(scenario.ratePerSecond, INSTANCES) / expected) * 100).toFixed(0)}%`,
        `${run.maxInFlight} / ${scenario.concurrency}${mark(badSlots)}`,
        run.perInstance.map((n) => count(n)).join(' / '),
        count(run.rejections.length),
        (statements / scenario.seconds / INSTANCES).toFixed(1),
        (statements / Math.max(1, run.starts.length)).toFixed(3),
      ]);
    }
    console.log(
      `\n${table(
        [
          'scenario',
          'batch',
          'rate·T',
          'started',
          'error',
          'bound',
          'max in flight',
          'per instance',
          '429s',
          'stmt/s/inst',
          'stmt/request',
        ],
        rows,
      )}`,
    );
    console.log(
      '\n  error: requests started within T against rate·T (target ±10% where the rate binds);' +
        '\n  bound: the largest excess the design allows, (N + 2)·batch over rate·T (README.md).',
    );
    printClosing(started);
    return failed ? 1 : 0;
  } finally {
    await cleanup();
  }
}
