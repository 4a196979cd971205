import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckResult, HealthCheckService, TypeOrmHealthIndicator } from '@nestjs/terminus';

import { Public } from 'src/common/decorators/auth.decorators';

import { ConnectionHealthIndicators } from './health-indicators';

/** Probes for orchestrators and monitoring. Not request-logged (see logger options). */
@Controller('health')
@Public()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly db: TypeOrmHealthIndicator,
    private readonly indicators: ConnectionHealthIndicators,
  ) {}

  /**
   * Detail for dashboards: the database, the scheduled check (overdue after two missed
   * intervals: 503), the webhook outbox (degraded: still 200), Epic connections by state
   * (informational, never down) and the signing keys (degraded when a rotation step is late).
   */
  @Get()
  @HealthCheck()
  detail(): Promise<HealthCheckResult> {
    return this.health.check([
      () => this.db.pingCheck('database').withTimeout(1500),
      () => this.indicators.scheduler(),
      () => this.indicators.outboxBacklog(),
      () => this.indicators.epicConnections(),
      () => this.indicators.signingKeys(),
    ]);
  }

  /** The process is up and serving HTTP. */
  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** Ready for traffic: the database answers within 1.5 s. Epic connections play no part. */
  @Get('ready')
  @HealthCheck()
  ready(): Promise<HealthCheckResult> {
    return this.health.check([() => this.db.pingCheck('database').withTimeout(1500)]);
  }
}
