import { rmSync } from 'node:fs';
import { arch, cpus, platform } from 'node:os';

import { DataSource } from 'typeorm';

import { dataSourceOptions } from 'src/database/data-source';

import { TEST_SERVER_URL, urlFor, withAdmin } from 'test/setup/database';

export interface BenchDatabase {
  name: string;
  url: string;
  serverVersion: string;
  drop(): Promise<void>;
}

/** The PostgreSQL server, without its credentials, for messages. */
export function serverLabel(): string {
  const url = new URL(TEST_SERVER_URL);
  return `${url.hostname}:${url.port || '5432'}`;
}

/**
 * A fresh, migrated database for this run on the test server (TEST_DATABASE_URL, default
 * postgres://postgres@127.0.0.1:5432/postgres), as test/setup/global-setup.ts makes its template.
 * Returns null when the server cannot be reached.
 */
export async function createBenchDatabase(): Promise<BenchDatabase | null> {
  const name = `ec_bench_${process.pid}`;
  let serverVersion: string;
  try {
    serverVersion = await withAdmin(async (admin) => {
      const [row] = (await admin.query<{ v: string }>(`SELECT current_setting('server_version') AS v`)).rows;
      await admin.query(`DROP DATABASE IF EXISTS "${name}"`);
      await admin.query(`CREATE DATABASE "${name}"`);
      return row.v;
    });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    console.error(`PostgreSQL is not reachable at ${serverLabel()} (${reason}).`);
    console.error('Start it, or set TEST_DATABASE_URL to a server where this user may create databases.');
    return null;
  }
  const url = urlFor(name);
  const drop = (): Promise<void> =>
    withAdmin(async (admin) => {
      await admin.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [name],
      );
      await admin.query(`DROP DATABASE IF EXISTS "${name}"`);
    });
  try {
    const ds = new DataSource(dataSourceOptions(url, 1));
    await ds.initialize();
    try {
      await ds.runMigrations();
    } finally {
      await ds.destroy();
    }
  } catch (error) {
    await drop();
    throw error;
  }
  return { name, url, serverVersion, drop };
}

/**
 * Cleans up once, on the normal path or on Ctrl-C / SIGTERM (then exits 130). Returns the cleanup
 * to await at the end of the run.
 */
export function cleanupOnce(what: string, close: () => Promise<void>): () => Promise<void> {
  let cleaning: Promise<void> | undefined;
  const onSignal = (): void => {
    console.error(`\nInterrupted: closing ${what} and dropping the database.`);
    void cleanup().finally(() => process.exit(130));
  };
  const cleanup = (): Promise<void> => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    return (cleaning ??= close().catch((error: unknown) => {
      console.error('Cleanup failed:', error);
    }));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return cleanup;
}

/** The first lines of a section's output: what it measures, and on what. */
export function printEnvironment(title: string, db: BenchDatabase, poolSize: number): void {
  const cpu = cpus();
  console.log(title);
  console.log(`  Node ${process.version} on ${platform()} ${arch()}`);
  console.log(`  CPU: ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown'}`);
  console.log(
    `  PostgreSQL ${db.serverVersion} at ${serverLabel()}, database ${db.name}, app pool size ${poolSize}`,
  );
}

/**
 * The end of a run: each step in turn (closing apps, fakes), then drops the database and deletes
 * the log file (LOG_FILE). Every step is attempted; failures are thrown together at the end.
 */
export async function closeAll(
  db: BenchDatabase,
  ...steps: (() => Promise<unknown> | undefined)[]
): Promise<void> {
  const failures: unknown[] = [];
  for (const step of [...steps, () => db.drop()]) {
    try {
      await step();
    } catch (error) {
      failures.push(error);
    }
  }
  const log = process.env.LOG_FILE;
  if (log) rmSync(log, { force: true });
  if (failures.length > 0) throw new AggregateError(failures, 'Cleanup failed');
}
