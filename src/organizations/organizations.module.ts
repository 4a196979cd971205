import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';

import { ConnectionsModule } from 'src/connections/connections.module';
import { UsersModule } from 'src/users/users.module';

import { Organization } from './entities/organization.entity';
import { OrganizationsController } from './organizations.controller';
import { OrganizationsService } from './organizations.service';

@Module({
  // Connections: the JSON API shows each organization's connection, and a changed registration ends it.
  imports: [TypeOrmModule.forFeature([Organization]), UsersModule, ConnectionsModule],
  controllers: [OrganizationsController],
  providers: [OrganizationsService],
  exports: [OrganizationsService],
})
export class OrganizationsModule {}
