import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';

import { ClientKeysModule } from 'src/client-keys/client-keys.module';
import { ConnectionsModule } from 'src/connections/connections.module';
import { OrganizationsModule } from 'src/organizations/organizations.module';
import { UsersModule } from 'src/users/users.module';

import { AuthorizationCallbackService } from './authorization-callback.service';
import { BackendConnectionService } from './backend-connection.service';
import { CodeExchangeService } from './code-exchange.service';
import { ConnectionLifecycleService } from './connection-lifecycle.service';
import { CredentialsCheckService } from './credentials-check.service';
import { ConnectionInvalidationListener } from './connection-invalidation.listener';
import { PendingAuthorization } from './entities/pending-authorization.entity';
import { EpicAuthorizeController } from './epic-authorize.controller';
import { EpicConnectionController } from './epic-connection.controller';
import { LaunchSteps } from './launch-steps';
import { OAuthClientService } from './oauth-client.service';
import { OrganizationConnectionService } from './organization-connection.service';
import { PatientLaunchService } from './patient-launch.service';
import { PendingAuthorizationStore } from './pending-authorization.store';
import { ProviderLaunchService } from './provider-launch.service';
import { SmartDiscoveryService } from './smart-discovery.service';
import { TokenRefreshService } from './token-refresh.service';

/**
 * OAuth 2.0 / SMART App Launch with Epic: discovery, the organization's connection (an admin's
 * sign-in or a backend service), provider EHR and patient standalone launches, their callback,
 * registration help, disconnect, and token refresh with one refresh in flight per credential
 * across instances.
 */
@Module({
  imports: [
    TypeOrmModule.forFeature([PendingAuthorization]),
    OrganizationsModule,
    UsersModule,
    ClientKeysModule,
    ConnectionsModule,
  ],
  controllers: [EpicAuthorizeController, EpicConnectionController],
  providers: [
    SmartDiscoveryService,
    OAuthClientService,
    PendingAuthorizationStore,
    CodeExchangeService,
    ConnectionLifecycleService,
    OrganizationConnectionService,
    LaunchSteps,
    ProviderLaunchService,
    PatientLaunchService,
    AuthorizationCallbackService,
    BackendConnectionService,
    TokenRefreshService,
    ConnectionInvalidationListener,
    CredentialsCheckService,
  ],
  // FhirClient uses the stored tokens and refreshes them; the connection test builds an authorize URL.
  // ConnectionHealth disconnects; the registration page shows what to register.
  exports: [SmartDiscoveryService, ConnectionLifecycleService, TokenRefreshService, CredentialsCheckService],
})
export class EpicAuthModule {}
