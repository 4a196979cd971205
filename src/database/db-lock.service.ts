import { Injectable, Logger } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { DatabaseEndpoint } from './database-endpoint';

/**
 * PostgreSQL advisory locks, so that one instance among many does a piece of work.
 * Keys are hashed with hashtext() to 32 bits: two keys may collide, which only serialises them.
 */
@Injectable()
export class DbLockService {
  private readonly logger = new Logger(DbLockService.name);
  /** Keys of tryRunExclusive work running in this process. */
  private readonly running = new Set<string>();

  constructor(
    private readonly dataSource: DataSource,
    private readonly endpoint: DatabaseEndpoint,
  ) {}

  /**
   * Runs `work` only if no other instance is running work under `key`; returns false when skipped.
   * Unlike tryRun, `work` runs outside any transaction and may use the pool freely for as long as it
   * needs: the lock is a session-level advisory lock on a connection of its own, released after.
   * The embedded database allows one instance (its lock file) and one connection, so there the
   * lock is in-process only.
   */
  async tryRunExclusive(key: string, work: () => Promise<void>): Promise<boolean> {
    if (this.running.has(key)) return false;
    this.running.add(key);
    try {
      if (this.endpoint.mode === 'embedded') {
        await work();
        return true;
      }
      const runner = this.dataSource.createQueryRunner();
      await runner.connect();
      try {
        const [row] = (await runner.query('SELECT pg_try_advisory_lock(hashtext($1)) AS locked', [key])) as {
          locked: boolean;
        }[];
        if (!row?.locked) return false;
        try {
          await work();
        } finally {
          await runner.query('SELECT pg_advisory_unlock(hashtext($1))', [key]);
        }
        return true;
      } finally {
        await runner.release();
      }
    } finally {
      this.running.delete(key);
    }
  }

  /**
   * Runs `work` in a transaction holding the lock for `key`, waiting for it if another holds it.
   * With `waitMs`, gives up waiting after that long (PostgreSQL's lock_timeout: error 55P03).
   */
  withLock<T>(
    key: string,
    work: (manager: EntityManager) => Promise<T>,
    options: { waitMs?: number } = {},
  ): Promise<T> {
    return this.dataSource.transaction(async (manager) => {
      if (options.waitMs !== undefined) {
        await manager.query(`SELECT set_config('lock_timeout', $1, true)`, [
          `${Math.ceil(options.waitMs)}ms`,
        ]);
      }
      await manager.query('SELECT pg_advisory_xact_lock(hashtext($1))', [key]); // released at commit/rollback
      return work(manager);
    });
  }

  /**
   * Runs `work` only if no other instance holds the lock for `key`; returns false when skipped.
   * Errors from `work` are logged and reported as `true` (it ran) so a scheduled tick never rejects.
   */
  async tryRun(key: string, work: (manager: EntityManager) => Promise<void>): Promise<boolean> {
    try {
      return await this.dataSource.transaction(async (manager) => {
        const [row] = await manager.query<{ locked: boolean }[]>(
          'SELECT pg_try_advisory_xact_lock(hashtext($1)) AS locked',
          [key],
        );
        if (!row?.locked) return false;
        await work(manager);
        return true;
      });
    } catch (error) {
      this.logger.error({ err: error, lock: key }, `Locked work "${key}" failed`);
      return true;
    }
  }
}
