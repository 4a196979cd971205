import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** One counter a hit counts on, and the count that blocks it (the hit that reaches it blocks). */
export interface CounterLimit {
  key: string;
  blockAt: number;
}

/** A counter after a hit. */
export interface CounterState {
  key: string;
  hits: number;
  /** Milliseconds until the window ends; 0 once it has. */
  windowMs: number;
  /** Milliseconds until the block ends; 0 when not blocked. */
  blockMs: number;
  /** False when the hit was not counted, because a counter it touches was blocked already. */
  counted: boolean;
}

interface CounterRow {
  key: string;
  hits: number;
  window_ms: number;
  block_ms: number;
  counted: boolean;
}

/**
 * Fixed-window counters in PostgreSQL (`throttle_counter`), shared by every instance: the login
 * throttle (PgThrottlerStorage, in auth) and the sign-in lockout (LoginLockout) count here. It
 * lives in the users module, which auth may import and which may not import auth.
 *
 * A hit is one atomic statement on the database clock. A window of `windowMs` starts at a
 * counter's first hit (or the first after its window ended); the hit that brings it to `blockAt`
 * blocks it for `blockMs`. While any counter of a hit is blocked, the hit counts on none of them
 * (a block never grows, and a blocked counter cannot feed another).
 */
@Injectable()
export class ThrottleCounterService {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Counts one hit on each counter (distinct keys), unless one of them is blocked: then nothing is
   * counted and the answer lists the blocked ones (`counted: false`).
   */
  async hit(counters: CounterLimit[], windowMs: number, blockMs: number): Promise<CounterState[]> {
    const rows = await this.dataSource.query<CounterRow[]>(
      `WITH args AS (SELECT $3::double precision * interval '1 millisecond' AS win,
                            $4::double precision * interval '1 millisecond' AS block),
            k AS (SELECT * FROM unnest($1::text[], $2::int[]) AS k(key, block_at)),
            held AS (SELECT * FROM throttle_counter
                      WHERE key IN (SELECT key FROM k) AND blocked_until > now()),
            counted AS (
              INSERT INTO throttle_counter AS t (key, hits, window_ends_at, blocked_until)
              SELECT k.key, 1, now() + args.win, CASE WHEN 1 >= k.block_at THEN now() + args.block END
                FROM k, args
               WHERE NOT EXISTS (SELECT 1 FROM held)
              ON CONFLICT (key) DO UPDATE SET
                hits = CASE WHEN t.blocked_until > now() THEN t.hits
                            WHEN t.window_ends_at <= now() THEN 1
                            ELSE t.hits + 1 END,
                window_ends_at = CASE WHEN t.blocked_until > now() THEN t.window_ends_at
                                      WHEN t.window_ends_at <= now() THEN EXCLUDED.window_ends_at
                                      ELSE t.window_ends_at END,
                blocked_until = CASE WHEN t.blocked_until > now() THEN t.blocked_until
                                     WHEN (CASE WHEN t.window_ends_at <= now() THEN 1 ELSE t.hits + 1 END)
                                          >= (SELECT k.block_at FROM k WHERE k.key = EXCLUDED.key)
                                       THEN now() + (SELECT block FROM args)
                                     END
              RETURNING t.*)
       SELECT key, hits, counted,
              GREATEST(0, EXTRACT(EPOCH FROM (window_ends_at - now())) * 1000)::double precision AS window_ms,
              COALESCE(GREATEST(0, EXTRACT(EPOCH FROM (blocked_until - now())) * 1000), 0)::double precision
                AS block_ms
         FROM (SELECT *, true AS counted FROM counted
               UNION ALL
               SELECT *, false AS counted FROM held) AS r`,
      [counters.map((c) => c.key), counters.map((c) => c.blockAt), windowMs, blockMs],
    );
    return rows.map((r) => ({
      key: r.key,
      hits: r.hits,
      windowMs: r.window_ms,
      blockMs: r.block_ms,
      counted: r.counted,
    }));
  }

  /** Whether any of these counters is blocked now. */
  async anyBlocked(keys: string[]): Promise<boolean> {
    const rows = await this.dataSource.query<unknown[]>(
      `SELECT 1 FROM throttle_counter WHERE key = ANY($1::text[]) AND blocked_until > now() LIMIT 1`,
      [keys],
    );
    return rows.length > 0;
  }

  /** Deletes these counters, and every counter whose key starts with one of `prefixes`. */
  async clear(keys: string[], prefixes: string[] = []): Promise<void> {
    await this.dataSource.query(
      `DELETE FROM throttle_counter WHERE key = ANY($1::text[]) OR key LIKE ANY($2::text[])`,
      [keys, prefixes.map((p) => `${p.replace(/[\\%_]/g, '\\$&')}%`)],
    );
  }

  /** Deletes the counters whose window and block have ended. */
  async sweep(): Promise<void> {
    await this.dataSource.query(
      `DELETE FROM throttle_counter
        WHERE window_ends_at < now() AND (blocked_until IS NULL OR blocked_until < now())`,
    );
  }
}
