import { Logger } from '@nestjs/common';
import { ThrottlerStorage } from '@nestjs/throttler';

import { ThrottleCounterService } from 'src/users/throttle-counter.service';

type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/** One in this many increments also deletes the counters whose window and block have ended. */
const SWEEP_EVERY = 200;

/**
 * @nestjs/throttler storage in PostgreSQL, so that every instance counts against one limit per
 * client: a fixed window of `ttl` per key, counted by one atomic upsert on the database clock
 * (ThrottleCounterService, shared with the sign-in lockout); the hit that goes over `limit` blocks
 * the key for `blockDuration`, and blocked attempts do not extend the window.
 */
export class PgThrottlerStorage implements ThrottlerStorage {
  private readonly logger = new Logger(PgThrottlerStorage.name);
  private calls = 0;

  constructor(private readonly counters: ThrottleCounterService) {}

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    const id = `${throttlerName}:${key}`.slice(0, 200);
    const [row] = await this.counters.hit(
      [{ key: id, blockAt: limit + 1 }],
      ttl,
      blockDuration > 0 ? blockDuration : ttl,
    );
    this.calls += 1;
    if (this.calls % SWEEP_EVERY === 0) void this.sweep();
    const blocked = row.blockMs > 0;
    return {
      totalHits: blocked ? Math.max(row.hits, limit + 1) : row.hits,
      timeToExpire: Math.ceil(row.windowMs / 1000),
      isBlocked: blocked,
      timeToBlockExpire: blocked ? Math.ceil(row.blockMs / 1000) : 0,
    };
  }

  private async sweep(): Promise<void> {
    try {
      await this.counters.sweep();
    } catch (error) {
      this.logger.warn({ err: error }, 'Could not sweep ended throttle counters');
    }
  }
}
