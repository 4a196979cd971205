import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

import { API_KEY_IN_TEXT, TEST_SECRET_MARKER } from 'test/factories/secrets';
import { withAdmin } from './database';

/**
 * Drops the run's databases, stops the embedded server, and fails the run if any secret a test
 * used (all carry TEST_SECRET_MARKER) or any whole API key reached the application log.
 */
export default async function globalTeardown(): Promise<void> {
  const run = process.env.TEST_RUN_ID;
  if (run) {
    await withAdmin(async (admin) => {
      const { rows } = await admin.query<{ datname: string }>(
        'SELECT datname FROM pg_database WHERE datname LIKE $1',
        [`${run}%`],
      );
      for (const { datname } of rows) {
        await admin.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
          [datname],
        );
        await admin.query(`DROP DATABASE IF EXISTS "${datname}"`);
      }
    });
  }
  const pglite = (globalThis as Record<string, unknown>).__EC_PGLITE__ as
    { db: PGlite; server: PGLiteSocketServer } | undefined;
  if (pglite) {
    await pglite.server.stop();
    await pglite.db.close();
  }

  const logDir = process.env.TEST_LOG_DIR;
  if (logDir && existsSync(logDir)) {
    const leaks: string[] = [];
    let lines = 0;
    for (const file of readdirSync(logDir)) {
      const text = readFileSync(join(logDir, file), 'utf8');
      lines += text.split('\n').length;
      if (text.includes(TEST_SECRET_MARKER) || API_KEY_IN_TEXT.test(text)) leaks.push(file);
    }
    if (leaks.length > 0) {
      throw new Error(`A test secret reached the application log (${leaks.join(', ')}, kept in ${logDir})`);
    }
    if (process.env.KEEP_TEST_LOGS !== '1') rmSync(logDir, { recursive: true, force: true });
    process.stdout.write(`\nlog check: ${lines} captured log lines contain no test secret or API key\n`);
  }
}
