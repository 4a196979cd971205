import { DataSource } from 'typeorm';

import { dataSourceOptions } from './data-source';

/**
 * For the TypeORM CLI (`npm run migration:run`). It needs a PostgreSQL server: the embedded
 * database migrates itself when the service starts (MIGRATIONS_RUN=true).
 */
const url = process.env.DATABASE_URL;
if (!url) {
  throw new Error(
    'Set DATABASE_URL to run migrations with the CLI (the embedded database migrates at start).',
  );
}

export default new DataSource(dataSourceOptions(url, 2));
