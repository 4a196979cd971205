import { Logger, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';

import { AppConfig } from 'src/config/app-config';

import { EmbeddedPostgres } from './embedded-postgres';

export type DatabaseMode = 'postgres' | 'embedded';

/** Where the database is: the configured PostgreSQL server, or the embedded one this process runs. */
export class DatabaseEndpoint {
  private constructor(
    readonly mode: DatabaseMode,
    readonly url: string,
    readonly poolSize: number,
    private readonly embedded?: EmbeddedPostgres,
  ) {}

  static async open(config: AppConfig): Promise<DatabaseEndpoint> {
    const logger = new Logger(DatabaseEndpoint.name);
    if (config.env.DATABASE_URL) {
      logger.log({ mode: 'postgres' }, 'Database: PostgreSQL server from DATABASE_URL');
      return new DatabaseEndpoint('postgres', config.env.DATABASE_URL, config.env.DATABASE_POOL_SIZE);
    }
    const started = Date.now();
    const embedded = await EmbeddedPostgres.start(config.dataDir);
    logger.warn(
      { mode: 'embedded', dataDir: config.dataDir, ms: Date.now() - started },
      'Database: embedded PostgreSQL (PGlite) in this process. For trying the service and development; ' +
        'set DATABASE_URL to a PostgreSQL server for production.',
    );
    return new DatabaseEndpoint('embedded', embedded.url, EmbeddedPostgres.MAX_CONNECTIONS, embedded);
  }

  /** Closes the pool first (the embedded server must outlive its clients), then the embedded server. */
  async close(dataSource: DataSource): Promise<void> {
    if (dataSource.isInitialized) await dataSource.destroy();
    await this.embedded?.stop();
  }
}

/** Shuts the endpoint down with the app. */
export class DatabaseLifecycle implements OnApplicationShutdown {
  constructor(
    private readonly endpoint: DatabaseEndpoint,
    private readonly dataSource: DataSource,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.endpoint.close(this.dataSource);
  }
}
