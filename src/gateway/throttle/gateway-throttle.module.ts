import { Module } from '@nestjs/common';

import { MetricsService } from 'src/metrics/metrics.service';
import { OrganizationsModule } from 'src/organizations/organizations.module';

import { GatewayBudgetRepository } from './gateway-budget.repository';
import { GatewayLimitsRepository } from './gateway-limits.repository';
import { GATEWAY_THROTTLE_METRICS, GatewayThrottleMetrics } from './gateway-throttle.metrics';
import { GatewayThrottleService } from './gateway-throttle.service';

/**
 * The FHIR gateway's per-organization throttle (README.md here). Imported by GatewayModule only;
 * its tables (`gateway_budget`, `gateway_limits`) belong to the gateway module.
 */
@Module({
  // Organizations: an override names an existing organization, and its audit event the name.
  imports: [OrganizationsModule],
  providers: [
    GatewayThrottleService,
    GatewayBudgetRepository,
    GatewayLimitsRepository,
    // Queued, throttled and upstream 429 counts per organization on /metrics (MetricsModule is global).
    { provide: GATEWAY_THROTTLE_METRICS, useExisting: MetricsService },
  ],
  exports: [GatewayThrottleService],
})
export class GatewayThrottleModule {}

/** MetricsService implements the seam (checked here, where both are known). */
export type MetricsImplementsSeam = MetricsService extends GatewayThrottleMetrics ? true : never;
const _implemented: MetricsImplementsSeam = true;
void _implemented;
