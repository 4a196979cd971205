import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';

import { OrganizationsModule } from 'src/organizations/organizations.module';

import { ApiKeyVerifier } from './api-key-verifier';
import { ApiKeysController } from './api-keys.controller';
import { ApiKeysService } from './api-keys.service';
import { ApiKey } from './entities/api-key.entity';

/**
 * API keys: organizations' service credentials for the FHIR gateway. The gateway calls
 * `ApiKeysService.authenticate` and `recordUse`; the JSON API and AdminUi's keys page manage them.
 */
@Module({
  // Organizations: a key belongs to one, whose existence and name (for the audit trail) it checks.
  imports: [TypeOrmModule.forFeature([ApiKey]), OrganizationsModule],
  controllers: [ApiKeysController],
  providers: [ApiKeysService, ApiKeyVerifier],
  exports: [ApiKeysService],
})
export class ApiKeysModule {}
