import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';

import { LoginLockout } from './login-lockout';
import { ThrottleCounterService } from './throttle-counter.service';
import { User } from './user.entity';
import { UsersService } from './users.service';

@Module({
  imports: [TypeOrmModule.forFeature([User])],
  providers: [UsersService, LoginLockout, ThrottleCounterService],
  // ThrottleCounterService: the login throttle (auth) counts in the same table as the lockout.
  exports: [UsersService, ThrottleCounterService],
})
export class UsersModule {}
