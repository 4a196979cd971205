import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { Type } from '@nestjs/common';

import { DatabaseEndpoint } from 'src/database/database-endpoint';
import { EmbeddedPostgres } from 'src/database/embedded-postgres';

import { bootTestApp, TestApp } from './test-app';

const ROOT = join(__dirname, '..', '..');

/**
 * Starts `EmbeddedPostgres` (the app's own class: PGlite in DATA_DIR behind a socket server that
 * takes one connection) in a child process: PGlite's WebAssembly cannot load inside Jest's VM.
 */
async function startEmbeddedPostgres(dataDir: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const script = `
    const { EmbeddedPostgres } = require(${JSON.stringify(join(ROOT, 'src/database/embedded-postgres.ts'))});
    EmbeddedPostgres.start(process.argv[1]).then((pg) => {
      process.stdout.write(JSON.stringify({ url: pg.url }) + '\\n');
      const stop = () => pg.stop().finally(() => process.exit(0));
      process.on('SIGTERM', stop);
      process.on('disconnect', stop); // the test process went away
    }, (e) => { console.error(e); process.exit(1); });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', script, dataDir], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve((JSON.parse(line) as { url: string }).url);
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => reject(new Error(`embedded PostgreSQL exited (${code}): ${err}`)));
  });
  return {
    url,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * Boots the real AppModule on the embedded database, as `npm start` without DATABASE_URL does:
 * `DatabaseEndpoint` in `embedded` mode with EmbeddedPostgres's single connection, migrations run
 * at boot, a fresh DATA_DIR. The one difference is where PGlite runs (a child process, see above);
 * the app talks to it over the same wire protocol either way. `modules` as in createTestApp.
 */
export async function createEmbeddedTestApp(
  options: { env?: Record<string, string>; modules?: Type[] } = {},
): Promise<TestApp> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ec-embedded-app-'));
  const database = await startEmbeddedPostgres(dataDir);
  const cleanUp = async () => {
    await database.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  // The constructor is private to DatabaseEndpoint.open(), which would start PGlite in this VM.
  const Endpoint = DatabaseEndpoint as unknown as new (
    mode: 'embedded',
    url: string,
    poolSize: number,
  ) => DatabaseEndpoint;
  const endpoint = new Endpoint('embedded', database.url, EmbeddedPostgres.MAX_CONNECTIONS);
  try {
    return await bootTestApp({
      env: { DATABASE_URL: '', DATA_DIR: dataDir, MIGRATIONS_RUN: 'true', ...options.env },
      modules: options.modules,
      override: (builder) => builder.overrideProvider(DatabaseEndpoint).useValue(endpoint),
      onClose: cleanUp,
    });
  } catch (error) {
    await cleanUp();
    throw error;
  }
}
