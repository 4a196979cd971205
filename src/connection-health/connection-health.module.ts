import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';

import { HealthController } from './health.controller';

/** Health of this service (Terminus) and, as later issues add, of each Epic connection. */
@Module({
  imports: [TerminusModule.forRoot()],
  controllers: [HealthController],
})
export class ConnectionHealthModule {}
