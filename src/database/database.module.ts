import { Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';

import { DatabaseEndpoint, DatabaseLifecycle } from './database-endpoint';
import { dataSourceOptions } from './data-source';
import { DbLockService } from './db-lock.service';

/** Holds the single DatabaseEndpoint, shared by TypeORM's module and ours. */
@Module({
  providers: [
    {
      provide: DatabaseEndpoint,
      inject: [APP_CONFIG],
      useFactory: (c: AppConfig) => DatabaseEndpoint.open(c),
    },
  ],
  exports: [DatabaseEndpoint],
})
class DatabaseEndpointModule {}

@Global()
@Module({
  imports: [
    DatabaseEndpointModule,
    TypeOrmModule.forRootAsync({
      imports: [DatabaseEndpointModule],
      inject: [APP_CONFIG, DatabaseEndpoint],
      useFactory: (config: AppConfig, endpoint: DatabaseEndpoint) => ({
        ...dataSourceOptions(endpoint.url, endpoint.poolSize),
        migrationsRun: config.env.MIGRATIONS_RUN,
        retryAttempts: config.isProduction ? 10 : 2,
      }),
    }),
  ],
  providers: [
    DbLockService,
    {
      provide: DatabaseLifecycle,
      inject: [DatabaseEndpoint, DataSource],
      useFactory: (endpoint: DatabaseEndpoint, dataSource: DataSource) =>
        new DatabaseLifecycle(endpoint, dataSource),
    },
  ],
  exports: [DbLockService, DatabaseEndpointModule],
})
export class DatabaseModule {}
