import { Module } from '@nestjs/common';

import { GatewayAccessSweepJob } from './gateway-access-sweep.job';
import { GatewayAccessRecorder } from './gateway-access.recorder';
import { GatewayAccessRepository } from './gateway-access.repository';
import { GatewayTrafficService } from './gateway-traffic.service';

/**
 * The gateway's traffic: metrics and access records of each request (written by GatewayModule),
 * read by the organization's admins (the JSON route in GatewayModule, the organization page in
 * AdminUi). Its table, `gateway_access`, belongs to the gateway module. Imports nothing but the
 * global infrastructure (database, metrics, config).
 */
@Module({
  providers: [GatewayTrafficService, GatewayAccessRecorder, GatewayAccessRepository, GatewayAccessSweepJob],
  exports: [GatewayTrafficService],
})
export class GatewayTrafficModule {}
