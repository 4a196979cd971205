import { DataSourceOptions } from 'typeorm';

import { MIGRATIONS } from 'migrations/index';
import { ApiKey } from 'src/api-keys/entities/api-key.entity';
import { AuditEvent } from 'src/audit/audit-event.entity';
import { ClientSigningKey } from 'src/client-keys/entities/client-signing-key.entity';
import { Notification } from 'src/connection-health/entities/notification.entity';
import { EpicCredential } from 'src/connections/entities/epic-credential.entity';
import { OrganizationConnection } from 'src/connections/entities/organization-connection.entity';
import { PendingAuthorization } from 'src/epic-auth/entities/pending-authorization.entity';
import { Organization } from 'src/organizations/entities/organization.entity';
import { User } from 'src/users/user.entity';

/** Every entity. Feature modules register their own with TypeOrmModule.forFeature. */
export const ENTITIES = [
  Organization,
  User,
  AuditEvent,
  PendingAuthorization,
  EpicCredential,
  OrganizationConnection,
  Notification,
  ClientSigningKey,
  ApiKey,
];

/**
 * The one DataSource definition used by the app, the TypeORM CLI and the tests. Schema changes go
 * through migrations only: `synchronize` is off everywhere.
 */
export function dataSourceOptions(url: string, poolSize = 10): DataSourceOptions {
  return {
    type: 'postgres',
    url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'typeorm_migrations',
    migrationsTransactionMode: 'each',
    synchronize: false,
    migrationsRun: false,
    uuidExtension: 'pgcrypto',
    extra: { max: poolSize, connectionTimeoutMillis: 10_000 },
  };
}
