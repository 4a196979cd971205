import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { CronJob } from 'cron';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { DbLockService } from 'src/database/db-lock.service';

import { GatewayTrafficService } from './gateway-traffic.service';

export const GATEWAY_ACCESS_SWEEP_JOB = 'gateway-access-sweep';
/** Hourly, off the hour (the connection check often runs on it). */
const SWEEP_CRON = '23 * * * *';

/**
 * Deletes gateway access records past GATEWAY_ACCESS_RETENTION_DAYS, hourly (CRON_ENABLED), on one
 * instance at a time (an advisory lock, as the connection check). The tick only starts the work.
 */
@Injectable()
export class GatewayAccessSweepJob implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(GatewayAccessSweepJob.name);
  private job?: CronJob;

  constructor(
    private readonly traffic: GatewayTrafficService,
    private readonly locks: DbLockService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.config.env.CRON_ENABLED) return;
    this.job = CronJob.from({
      cronTime: SWEEP_CRON,
      timeZone: 'UTC',
      onTick: () => void this.tick(),
      start: true,
    });
  }

  onApplicationShutdown(): void {
    void this.job?.stop();
  }

  /** One sweep at `now`: the rows deleted, or null when another instance has it. Never rejects. */
  async tick(now = new Date()): Promise<number | null> {
    let removed: number | null = null;
    try {
      await this.locks.tryRunExclusive(`scheduled:${GATEWAY_ACCESS_SWEEP_JOB}`, async () => {
        removed = await this.traffic.sweep(now);
      });
      if (removed) this.logger.log({ removed }, 'Old gateway access records deleted');
    } catch (error) {
      this.logger.error({ err: error }, 'The gateway access sweep failed');
    }
    return removed;
  }
}
