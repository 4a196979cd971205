import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';

import { ClientKeysModule } from 'src/client-keys/client-keys.module';
import { ConnectionsModule } from 'src/connections/connections.module';
import { OrganizationsModule } from 'src/organizations/organizations.module';
import { UsersModule } from 'src/users/users.module';

import { AuthorizationService } from './authorization.service';
import { BackendConnectionService } from './backend-connection.service';
import { CredentialsCheckService } from './credentials-check.service';
import { ConnectionInvalidationListener } from './connection-invalidation.listener';
import { PendingAuthorization } from './entities/pending-authorization.entity';
import { EpicAuthorizeController } from './epic-authorize.controller';
import { EpicConnectionController } from './epic-connection.controller';
import { OAuthClientService } from './oauth-client.service';
import { SmartDiscoveryService } from './smart-discovery.service';
import { TokenRefreshService } from './token-refresh.service';

/**
 * OAuth 2.0 / SMART App Launch with Epic: discovery and the organization authorization
 * (authorize, callback, encrypted token storage), status, disconnect, and token refresh with one
 * refresh in flight per credential across instances; launches follow.
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
    AuthorizationService,
    BackendConnectionService,
    TokenRefreshService,
    ConnectionInvalidationListener,
    CredentialsCheckService,
  ],
  // FhirClient uses the stored tokens and refreshes them; the connection test builds an authorize URL.
  exports: [SmartDiscoveryService, AuthorizationService, TokenRefreshService, CredentialsCheckService],
})
export class EpicAuthModule {}
