import { timingSafeEqual } from 'node:crypto';

import {
  Controller,
  Get,
  Header,
  Headers,
  Inject,
  Logger,
  OnModuleInit,
  UnauthorizedException,
} from '@nestjs/common';

import { Public } from 'src/common/decorators/auth.decorators';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { MetricsService } from 'src/metrics/metrics.service';

/** Prometheus scrape endpoint; with METRICS_TOKEN set, it needs `Authorization: Bearer <token>`. */
@Controller('metrics')
@Public()
export class MetricsController implements OnModuleInit {
  constructor(
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    if (this.config.isProduction && !this.config.env.METRICS_TOKEN) {
      new Logger(MetricsController.name).warn(
        '/metrics is open (organization ids and connection counts): set METRICS_TOKEN, or restrict it at the proxy',
      );
    }
  }

  @Get()
  @Header('Cache-Control', 'no-store')
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  async scrape(@Headers('authorization') authorization?: string): Promise<string> {
    const token = this.config.env.METRICS_TOKEN;
    if (token && !sameSecret(authorization ?? '', `Bearer ${token}`)) {
      throw new UnauthorizedException('Metrics need the bearer token (METRICS_TOKEN).');
    }
    return this.metrics.registry.metrics();
  }
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
