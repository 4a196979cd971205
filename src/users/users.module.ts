import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';

import { RootAdminBootstrap } from './root-admin.bootstrap';
import { User } from './user.entity';
import { UsersService } from './users.service';

@Module({
  imports: [TypeOrmModule.forFeature([User])],
  providers: [UsersService, RootAdminBootstrap],
  exports: [UsersService],
})
export class UsersModule {}
