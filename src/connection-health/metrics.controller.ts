import { Controller, Get, Header, Inject, Logger, OnModuleInit } from '@nestjs/common';

import { Public } from 'src/common/decorators/auth.decorators';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { MetricsService } from 'src/metrics/metrics.service';

import { operationalEndpointServed, RequiresOperationalToken } from './operational-token.guard';

/**
 * Prometheus scrape endpoint. It lists organization ids with their token expiries, so with
 * METRICS_TOKEN set it needs `Authorization: Bearer <token>`, and in production it is served only
 * then (404 without METRICS_TOKEN).
 */
@Controller('metrics')
@Public()
export class MetricsController implements OnModuleInit {
  constructor(
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    if (!operationalEndpointServed(this.config, 'METRICS_TOKEN')) {
      new Logger(MetricsController.name).warn(
        '/metrics is not served (404): in production it needs METRICS_TOKEN, sent as a bearer token',
      );
    }
  }

  @Get()
  @RequiresOperationalToken('METRICS_TOKEN')
  @Header('Cache-Control', 'no-store')
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  scrape(): Promise<string> {
    return this.metrics.registry.metrics();
  }
}
