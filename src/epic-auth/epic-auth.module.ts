import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';

import { OrganizationsModule } from 'src/organizations/organizations.module';

import { AuthorizationService } from './authorization.service';
import { ConnectionInvalidationListener } from './connection-invalidation.listener';
import { EpicCredential } from './entities/epic-credential.entity';
import { PendingAuthorization } from './entities/pending-authorization.entity';
import { EpicAuthorizeController } from './epic-authorize.controller';
import { EpicConnectionController } from './epic-connection.controller';
import { SmartDiscoveryService } from './smart-discovery.service';
import { TokenStoreService } from './token-store.service';

/**
 * OAuth 2.0 / SMART App Launch with Epic: discovery and the organization authorization
 * (authorize, callback, encrypted token storage); status, disconnect and launches follow.
 */
@Module({
  imports: [TypeOrmModule.forFeature([PendingAuthorization, EpicCredential]), OrganizationsModule],
  controllers: [EpicAuthorizeController, EpicConnectionController],
  providers: [SmartDiscoveryService, AuthorizationService, TokenStoreService, ConnectionInvalidationListener],
  exports: [SmartDiscoveryService],
})
export class EpicAuthModule {}
