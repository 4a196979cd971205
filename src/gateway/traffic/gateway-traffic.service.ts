import { Inject, Injectable } from '@nestjs/common';

import { DomainError, ErrorCode } from 'src/common/errors/domain-error';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { MetricsService } from 'src/metrics/metrics.service';

import { GatewayAccessRecorder } from './gateway-access.recorder';
import { GatewayAccessRepository } from './gateway-access.repository';
import type { GatewayAccess, GatewayAccessPage, TrafficHour } from './gateway-traffic.types';
import { hourlyTraffic, trafficWindowStart } from './hourly-traffic';

/** `before` cursors: `<ISO time>~<id>` of the last record of the previous page. */
export const ACCESS_CURSOR = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,3})?Z)~(\d{1,19})$/;

/**
 * The gateway's traffic: each request's metrics and access record as it ends (`requestEnded`), and
 * what the organization's admins see of it (`page`, `lastDay`). Records are kept
 * GATEWAY_ACCESS_RETENTION_DAYS (`sweep`, hourly on one instance).
 *
 * @see src/gateway/README.md ("Metrics", "Access records")
 */
@Injectable()
export class GatewayTrafficService {
  constructor(
    private readonly recorder: GatewayAccessRecorder,
    private readonly repository: GatewayAccessRepository,
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** One request ended: counted at once (Prometheus), recorded in the next batch. Never throws. */
  requestEnded(access: GatewayAccess): void {
    this.metrics.gatewayRequest(
      access.organizationId,
      access.method,
      access.status,
      access.durationMs / 1000,
    );
    this.recorder.record(access);
  }

  /** Writes the buffered records now (tests, shutdown). */
  flush(): Promise<void> {
    return this.recorder.flush();
  }

  /** A page of the organization's records, newest first; `before` from the previous page's `nextBefore`. */
  async page(
    organizationId: string,
    options: { limit: number; before?: string },
  ): Promise<GatewayAccessPage> {
    let before: { at: Date; id: string } | null = null;
    if (options.before !== undefined) {
      const match = ACCESS_CURSOR.exec(options.before);
      if (!match) {
        throw new DomainError(ErrorCode.BadRequest, 'before must be the nextBefore of a previous page.');
      }
      before = { at: new Date(match[1]), id: match[2] };
    }
    const rows = await this.repository.page(organizationId, options.limit, before);
    const last = rows[rows.length - 1];
    return {
      records: rows.map((row) => ({
        id: row.id,
        apiKeyId: row.apiKeyId,
        userId: row.userId,
        method: row.method,
        resourceType: row.resourceType,
        status: row.status,
        durationMs: row.durationMs,
        bytesSent: row.bytesSent,
        at: row.at.toISOString(),
      })),
      nextBefore: rows.length === options.limit && last ? `${last.at.toISOString()}~${last.id}` : null,
    };
  }

  /** The organization's requests and errors per hour over the 24 hours up to `now`, oldest first. */
  async lastDay(organizationId: string, now = new Date()): Promise<TrafficHour[]> {
    return hourlyTraffic(await this.repository.hourlyCounts(organizationId, trafficWindowStart(now)), now);
  }

  /** Deletes the records older than GATEWAY_ACCESS_RETENTION_DAYS before `now`, in batches. */
  sweep(now = new Date()): Promise<number> {
    const days = this.config.env.GATEWAY_ACCESS_RETENTION_DAYS;
    return this.repository.deleteOlderThan(new Date(now.getTime() - days * 86_400_000));
  }
}
