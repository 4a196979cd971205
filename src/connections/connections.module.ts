import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';

import { ConnectionsReadModel } from './connections.read-model';
import { ConnectionsService } from './connections.service';
import { EpicCredential } from './entities/epic-credential.entity';
import { OrganizationConnection } from './entities/organization-connection.entity';
import { TokenStoreService } from './token-store.service';

/**
 * The owner of Epic connections, an organization's own and its users' alike: their tokens
 * (encrypted at rest), expiry, last sync, last error and notified state, in the tables
 * `epic_credential` and `organization_connection`, which no other module touches. Others record
 * outcomes through ConnectionsService, use tokens through TokenStoreService, and read states,
 * lists, counts and the scheduled check's candidates through ConnectionsReadModel.
 */
@Module({
  imports: [TypeOrmModule.forFeature([EpicCredential, OrganizationConnection])],
  providers: [ConnectionsService, TokenStoreService, ConnectionsReadModel],
  exports: [ConnectionsService, TokenStoreService, ConnectionsReadModel],
})
export class ConnectionsModule {}
