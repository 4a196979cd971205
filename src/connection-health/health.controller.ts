import { Controller, Get, Inject, Logger, OnModuleInit } from '@nestjs/common';
import { HealthCheck, HealthCheckResult, HealthCheckService, TypeOrmHealthIndicator } from '@nestjs/terminus';

import { Public } from 'src/common/decorators/auth.decorators';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { MailService } from 'src/mail/mail.service';

import { ConnectionHealthIndicators } from './health-indicators';
import { operationalEndpointServed, RequiresOperationalToken } from './operational-token.guard';

/**
 * Probes for orchestrators and monitoring. Not request-logged (see logger options). `live` and
 * `ready` are open (they say nothing but up or down); the detail names internals (connections by
 * state, signing key ids), so it needs HEALTH_TOKEN when set, and in production it is served only
 * then (404 without HEALTH_TOKEN).
 */
@Controller('health')
@Public()
export class HealthController implements OnModuleInit {
  constructor(
    private readonly health: HealthCheckService,
    private readonly db: TypeOrmHealthIndicator,
    private readonly indicators: ConnectionHealthIndicators,
    private readonly mail: MailService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    if (!operationalEndpointServed(this.config, 'HEALTH_TOKEN')) {
      new Logger(HealthController.name).warn(
        'The /health detail is not served (404): in production it needs HEALTH_TOKEN, sent as a bearer token; /health/live and /health/ready stay open',
      );
    }
  }

  /**
   * Detail for dashboards: the database, the scheduled check (overdue after two missed
   * intervals: 503), the outbox (degraded: still 200), Epic connections by state
   * (informational, never down), the signing keys (degraded when a rotation step is late) and,
   * when email is configured, the SMTP server (degraded when it does not answer or refuses the login).
   */
  @Get()
  @RequiresOperationalToken('HEALTH_TOKEN')
  @HealthCheck()
  detail(): Promise<HealthCheckResult> {
    return this.health.check([
      () => this.db.pingCheck('database').withTimeout(1500),
      () => this.indicators.scheduler(),
      () => this.indicators.outboxBacklog(),
      () => this.indicators.epicConnections(),
      () => this.indicators.signingKeys(),
      // Only when email is configured: an unconfigured feature is not a dependency.
      ...(this.mail.configured ? [() => this.indicators.mail()] : []),
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
