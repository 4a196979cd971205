import { Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';

import { loggerParams } from './logger.options';

@Module({
  imports: [
    LoggerModule.forRootAsync({ inject: [APP_CONFIG], useFactory: (c: AppConfig) => loggerParams(c) }),
  ],
})
export class LoggingModule {}
