import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';

import { OrganizationsModule } from 'src/organizations/organizations.module';

import { AuthorizationService } from './authorization.service';
import { EpicCredential } from './entities/epic-credential.entity';
import { PendingAuthorization } from './entities/pending-authorization.entity';
import { EpicAuthorizeController } from './epic-authorize.controller';
import { SmartDiscoveryService } from './smart-discovery.service';

/**
 * OAuth 2.0 / SMART App Launch with Epic: discovery and the start of the organization
 * authorization so far; the callback, token storage and launches follow (issues 4 and 8).
 */
@Module({
  imports: [TypeOrmModule.forFeature([PendingAuthorization, EpicCredential]), OrganizationsModule],
  controllers: [EpicAuthorizeController],
  providers: [SmartDiscoveryService, AuthorizationService],
  exports: [SmartDiscoveryService],
})
export class EpicAuthModule {}
