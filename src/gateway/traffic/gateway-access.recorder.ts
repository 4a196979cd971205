import { BeforeApplicationShutdown, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';

import { GatewayAccessRepository } from './gateway-access.repository';
import type { GatewayAccess } from './gateway-traffic.types';

/** A batch is written at most this long after its first record… */
export const FLUSH_INTERVAL_MS = 1_000;
/** …or as soon as it holds this many. */
export const FLUSH_ROWS = 500;
/** Records held at most while the database is slow or down; newer ones are dropped (and logged). */
export const MAX_BUFFERED = 20_000;

/**
 * Buffers the gateway's access records in memory and writes them in batches (one INSERT per
 * FLUSH_ROWS records or FLUSH_INTERVAL_MS), so a request never waits for, nor costs, a database
 * round trip of its own. One write at a time; shutdown writes what is left (onModuleDestroy, and
 * again before the database closes, for answers that ended meanwhile).
 *
 * What can be lost: on a crash (or a kill without shutdown), the records of the last second (at
 * most FLUSH_ROWS… plus what arrived during a write in progress); a batch the database refuses
 * (logged, dropped: records are an operational view, not an audit trail); records beyond
 * MAX_BUFFERED while the database is unreachable. Metrics are not affected by any of these.
 */
@Injectable()
export class GatewayAccessRecorder implements OnModuleDestroy, BeforeApplicationShutdown {
  private readonly logger = new Logger(GatewayAccessRecorder.name);
  private buffer: GatewayAccess[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private dropped = 0;

  constructor(private readonly repository: GatewayAccessRepository) {}

  /** Buffers one record (synchronous, never throws). */
  record(access: GatewayAccess): void {
    if (this.buffer.length >= MAX_BUFFERED) {
      if (this.dropped++ % 1000 === 0) {
        this.logger.warn({ dropped: this.dropped }, 'Gateway access records dropped: the buffer is full');
      }
      return;
    }
    this.buffer.push(access);
    if (this.buffer.length >= FLUSH_ROWS) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), FLUSH_INTERVAL_MS).unref();
  }

  /** Writes what is buffered (after any write in progress). Never rejects: failures are logged. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.writing = this.writing.then(() => this.writeBuffered());
    return this.writing;
  }

  async onModuleDestroy(): Promise<void> {
    await this.flush();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.flush();
  }

  private async writeBuffered(): Promise<void> {
    while (this.buffer.length > 0) {
      const batch = this.buffer.splice(0, FLUSH_ROWS);
      try {
        await this.repository.insert(batch);
      } catch (error) {
        this.logger.error({ err: error, records: batch.length }, 'Could not write gateway access records');
        return;
      }
    }
  }
}
