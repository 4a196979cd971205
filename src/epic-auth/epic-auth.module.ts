import { Module } from '@nestjs/common';

import { SmartDiscoveryService } from './smart-discovery.service';

/**
 * OAuth 2.0 / SMART App Launch with Epic: discovery so far; the authorization flow, token
 * storage and launches follow (issues 4 and 8).
 */
@Module({
  providers: [SmartDiscoveryService],
  exports: [SmartDiscoveryService],
})
export class EpicAuthModule {}
