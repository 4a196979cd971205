import { Global, Module } from '@nestjs/common';

import { MetricsService } from './metrics.service';

/** Infrastructure: one Prometheus registry per application, recorded into by feature modules. */
@Global()
@Module({
  providers: [MetricsService],
  exports: [MetricsService],
})
export class MetricsModule {}
