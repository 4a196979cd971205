import { Module } from '@nestjs/common';

import { OrganizationsModule } from 'src/organizations/organizations.module';

import { GatewayBudgetRepository } from './gateway-budget.repository';
import { GatewayLimitsRepository } from './gateway-limits.repository';
import { GatewayThrottleService } from './gateway-throttle.service';

/**
 * The FHIR gateway's per-organization throttle (README.md here). Imported by GatewayModule only;
 * its tables (`gateway_budget`, `gateway_limits`) belong to the gateway module.
 */
@Module({
  // Organizations: an override names an existing organization, and its audit event the name.
  imports: [OrganizationsModule],
  providers: [GatewayThrottleService, GatewayBudgetRepository, GatewayLimitsRepository],
  exports: [GatewayThrottleService],
})
export class GatewayThrottleModule {}
