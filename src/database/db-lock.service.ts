import { Injectable, Logger } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

/**
 * PostgreSQL advisory locks, so that one instance among many does a piece of work.
 * Keys are hashed with hashtext() to 32 bits: two keys may collide, which only serialises them.
 */
@Injectable()
export class DbLockService {
  private readonly logger = new Logger(DbLockService.name);

  constructor(private readonly dataSource: DataSource) {}

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
