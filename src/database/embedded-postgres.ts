import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

import { PGlite } from '@electric-sql/pglite';
import { pgcrypto } from '@electric-sql/pglite/contrib/pgcrypto';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

export const EMBEDDED_LOCK_FILE = 'epic-connect.lock';

/** Raised when another process already serves the same data directory. */
export class DataDirInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(
      `The data directory ${dataDir} is in use by another epic-connect process (pid ${pid}). ` +
        'Stop that process, or start this one with a different DATA_DIR.',
    );
    this.name = 'DataDirInUseError';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `DATA_DIR/epic-connect.lock` (created exclusively, holding our pid). PGlite itself does not
 * stop two processes from opening one data directory, which would corrupt it. A lock left by a
 * process that no longer runs is taken over.
 */
export function acquireDataDirLock(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, EMBEDDED_LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      // Two processes taking over one stale lock at once: only the one whose pid stayed wins.
      if (readFileSync(file, 'utf8') !== String(process.pid)) {
        throw new DataDirInUseError(dataDir, Number.parseInt(readFileSync(file, 'utf8'), 10));
      }
      let released = false;
      return () => {
        if (released) return;
        released = true;
        rmSync(file, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number.parseInt(readFileSync(file, 'utf8'), 10);
      if (Number.isInteger(pid) && pid !== process.pid && isAlive(pid)) {
        throw new DataDirInUseError(dataDir, pid);
      }
      rmSync(file, { force: true }); // stale: its process is gone
    }
  }
  throw new Error(`Could not take the lock ${file}`);
}

/**
 * A real PostgreSQL (PGlite, compiled to WebAssembly) inside this process, served on an ephemeral
 * loopback port over the Postgres wire protocol so that TypeORM, pg and the session store use it
 * like any server. For trying the service and for development; production uses DATABASE_URL.
 *
 * Limits: the socket server accepts `maxConnections` clients and they share one backend session,
 * so the pool must not be larger than that and no code may await a second connection while a
 * transaction is open.
 */
export class EmbeddedPostgres {
  static readonly MAX_CONNECTIONS = 1;

  private constructor(
    private readonly db: PGlite,
    private readonly server: PGLiteSocketServer,
    private readonly releaseLock: () => void,
    readonly url: string,
  ) {}

  static async start(dataDir: string): Promise<EmbeddedPostgres> {
    const releaseLock = acquireDataDirLock(dataDir);
    try {
      const db = await PGlite.create({ dataDir: join(dataDir, 'pgdata'), extensions: { pgcrypto } });
      const server = new PGLiteSocketServer({
        db,
        host: '127.0.0.1',
        port: 0,
        maxConnections: EmbeddedPostgres.MAX_CONNECTIONS,
      });
      await server.start();
      const [host, port] = server.getServerConn().split(':');
      return new EmbeddedPostgres(db, server, releaseLock, `postgres://postgres@${host}:${port}/postgres`);
    } catch (e) {
      releaseLock();
      throw e;
    }
  }

  async stop(): Promise<void> {
    try {
      await this.server.stop();
      await this.db.close();
    } finally {
      this.releaseLock();
    }
  }
}
