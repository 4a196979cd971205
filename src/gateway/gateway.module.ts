import { Module } from '@nestjs/common';

import { ApiKeysModule } from 'src/api-keys/api-keys.module';
import { ConnectionsModule } from 'src/connections/connections.module';
import { FhirClientModule } from 'src/fhir-client/fhir-client.module';
import { OrganizationsModule } from 'src/organizations/organizations.module';

import { BulkJobsRepository } from './bulk-jobs.repository';
import { GatewayAuthenticator, OrganizationSlugCache } from './gateway-caller';
import { GatewayEntryService } from './gateway-entry.service';
import { PagingMemory } from './paging-links';
import { GatewayLimitsController } from './gateway-limits.controller';
import { GatewayService } from './gateway.service';
import { GatewayThrottleModule } from './throttle/gateway-throttle.module';
import { GatewayThrottleService } from './throttle/gateway-throttle.service';
import { GATEWAY_THROTTLE } from './throttle-seam';
import { GatewayAccessController } from './traffic/gateway-access.controller';
import { GatewayTrafficModule } from './traffic/gateway-traffic.module';

/**
 * The FHIR gateway: standard FHIR clients reach an organization's Epic (or other SMART on FHIR
 * server) at `/gateway/<org-slug>/fhir` with an API key, never holding Epic's tokens. Nothing
 * imports it; it exports nothing. The FHIR routes are no controller: GatewayEntryService takes them
 * from the HTTP server before Express, so only what a gateway request needs runs for it; the
 * controllers are the JSON routes of its limits and access records.
 */
@Module({
  imports: [
    ApiKeysModule,
    OrganizationsModule,
    ConnectionsModule,
    FhirClientModule,
    GatewayThrottleModule,
    // Metrics and access records of each request, and the admins' JSON route to them.
    GatewayTrafficModule,
  ],
  controllers: [GatewayLimitsController, GatewayAccessController],
  // Per-organization concurrency and rate limits shared by all instances (throttle/README.md).
  providers: [
    GatewayEntryService,
    GatewayService,
    // Which API key started which Bulk Data job (gateway_bulk_job).
    BulkJobsRepository,
    // The paging links at the base each allow-listed key was given (per instance, in memory).
    { provide: PagingMemory, useFactory: () => new PagingMemory() },
    GatewayAuthenticator,
    // Which organization a slug names (5 s per instance; forgotten when one is deleted here).
    OrganizationSlugCache,
    { provide: GATEWAY_THROTTLE, useExisting: GatewayThrottleService },
  ],
})
export class GatewayModule {}
