import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { PGlite } from '@electric-sql/pglite';
import { pgcrypto } from '@electric-sql/pglite/contrib/pgcrypto';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { DataSource } from 'typeorm';

import { dataSourceOptions } from 'src/database/data-source';

import { urlFor, withAdmin } from './database';

/**
 * Once per run, outside Jest's VMs: a migrated template database (each test file clones it), an
 * embedded PGlite server for the tests that exercise the embedded mode, and a folder for the
 * run's captured logs.
 */
export default async function globalSetup(): Promise<void> {
  const run = `ec_${process.pid}_${Date.now().toString(36)}`;
  const template = `${run}_tpl`;
  await withAdmin((admin) => admin.query(`CREATE DATABASE "${template}"`));
  const ds = new DataSource(dataSourceOptions(urlFor(template), 1));
  await ds.initialize();
  await ds.runMigrations();
  await ds.destroy(); // a template with open connections cannot be cloned
  process.env.TEST_RUN_ID = run;
  process.env.TEST_TEMPLATE_DB = template;

  const logDir = join(tmpdir(), `${run}-logs`);
  mkdirSync(logDir, { recursive: true });
  process.env.TEST_LOG_DIR = logDir;

  const db = await PGlite.create({ extensions: { pgcrypto } }); // in memory
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 1 });
  await server.start();
  process.env.TEST_PGLITE_URL = `postgres://postgres@${server.getServerConn()}/postgres`;
  (globalThis as Record<string, unknown>).__EC_PGLITE__ = { db, server };
}
