import { HttpModule } from '@nestjs/axios';
import { Module } from '@nestjs/common';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { OutboundHttp } from 'src/outbound/outbound-http.service';
import { ConnectionsModule } from 'src/connections/connections.module';
import { EpicAuthModule } from 'src/epic-auth/epic-auth.module';
import { OrganizationsModule } from 'src/organizations/organizations.module';

import { ConnectionTestController } from './connection-test.controller';
import { ConnectionTestService } from './connection-test.service';
import { CredentialCache } from './credential-cache';
import { FhirCallPolicy } from './fhir-call-policy';
import { FhirClientService } from './fhir-client.service';
import { FhirForwarder } from './fhir-forwarder';
import { FhirInterceptors } from './fhir-interceptors';

/**
 * Calls to Epic's FHIR API with the stored tokens: refresh before expiry and on 401 (one refresh
 * per credential across instances, through EpicAuth), retries of transient failures, typed
 * errors, and the two-layer connection test of the registration page.
 */
@Module({
  imports: [
    // A private axios instance: the interceptors never touch the global one.
    HttpModule.registerAsync({
      inject: [APP_CONFIG, OutboundHttp],
      useFactory: (config: AppConfig, outbound: OutboundHttp) => ({
        // The FHIR base is administrator-given: the address policy applies (OUTBOUND_ADDRESS_POLICY).
        httpAgent: outbound.httpAgent,
        httpsAgent: outbound.httpsAgent,
        timeout: config.env.EPIC_HTTP_TIMEOUT_MS,
        maxRedirects: 0, // a redirect could carry the bearer token to another host
        maxContentLength: 50 * 1024 * 1024,
        headers: { Accept: 'application/fhir+json' },
      }),
    }),
    ConnectionsModule,
    EpicAuthModule,
    OrganizationsModule,
  ],
  controllers: [ConnectionTestController],
  providers: [
    CredentialCache,
    FhirCallPolicy,
    FhirInterceptors,
    FhirForwarder,
    FhirClientService,
    ConnectionTestService,
  ],
  exports: [FhirClientService],
})
export class FhirClientModule {}
