import { Logger } from '@nestjs/common';
import { ThrottlerStorage } from '@nestjs/throttler';
import { DataSource } from 'typeorm';

interface CounterRow {
  hits: number;
  window_ms: number;
  block_ms: number | null;
}

type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/** One in this many increments also deletes the counters whose window and block have ended. */
const SWEEP_EVERY = 200;

/**
 * @nestjs/throttler storage in PostgreSQL, so that every instance counts against one limit per
 * client: a fixed window of `ttl` per key, counted by one atomic upsert on the database clock;
 * the hit that goes over `limit` blocks the key for `blockDuration`, and blocked attempts do not
 * extend the window.
 */
export class PgThrottlerStorage implements ThrottlerStorage {
  private readonly logger = new Logger(PgThrottlerStorage.name);
  private calls = 0;

  constructor(private readonly dataSource: DataSource) {}

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    const id = `${throttlerName}:${key}`.slice(0, 200);
    // "fresh": the window ended and no block is running, so this hit starts a new window.
    const [row] = await this.dataSource.query<CounterRow[]>(
      `WITH args AS (SELECT $2::double precision * interval '1 millisecond' AS ttl,
                            $4::double precision * interval '1 millisecond' AS block)
       INSERT INTO throttle_counter AS t (key, hits, window_ends_at, blocked_until)
       SELECT $1, 1, now() + args.ttl, CASE WHEN 1 > $3 THEN now() + args.block END FROM args
       ON CONFLICT (key) DO UPDATE SET
         hits = CASE WHEN t.blocked_until > now() THEN t.hits
                     WHEN t.window_ends_at <= now() THEN 1
                     ELSE t.hits + 1 END,
         window_ends_at = CASE WHEN t.blocked_until > now() THEN t.window_ends_at
                               WHEN t.window_ends_at <= now() THEN now() + (SELECT ttl FROM args)
                               ELSE t.window_ends_at END,
         blocked_until = CASE WHEN t.blocked_until > now() THEN t.blocked_until
                              WHEN (CASE WHEN t.window_ends_at <= now() THEN 1 ELSE t.hits + 1 END) > $3
                                THEN now() + (SELECT block FROM args)
                              END
       RETURNING hits,
                 GREATEST(0, EXTRACT(EPOCH FROM (window_ends_at - now())) * 1000)::double precision AS window_ms,
                 EXTRACT(EPOCH FROM (blocked_until - now())) * 1000 AS block_ms`,
      [id, ttl, limit, blockDuration > 0 ? blockDuration : ttl],
    );
    this.calls += 1;
    if (this.calls % SWEEP_EVERY === 0) void this.sweep();
    const blocked = row.block_ms !== null && Number(row.block_ms) > 0;
    return {
      totalHits: blocked ? Math.max(row.hits, limit + 1) : row.hits,
      timeToExpire: Math.ceil(Number(row.window_ms) / 1000),
      isBlocked: blocked,
      timeToBlockExpire: blocked ? Math.ceil(Number(row.block_ms) / 1000) : 0,
    };
  }

  private async sweep(): Promise<void> {
    try {
      await this.dataSource.query(
        `DELETE FROM throttle_counter
          WHERE window_ends_at < now() AND (blocked_until IS NULL OR blocked_until < now())`,
      );
    } catch (error) {
      this.logger.warn({ err: error }, 'Could not sweep ended throttle counters');
    }
  }
}
