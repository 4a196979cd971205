import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { DbLockService } from 'src/database/db-lock.service';

import { generatePassword, hashPassword } from './password-hasher';
import { Role, User } from './user.entity';

/**
 * On the first start with no users, creates the root admin from ROOT_ADMIN_EMAIL and
 * ROOT_ADMIN_PASSWORD, or admin@localhost with a random password that is printed once to the
 * terminal (never to the structured log) and must be changed at first login.
 */
@Injectable()
export class RootAdminBootstrap implements OnApplicationBootstrap {
  private readonly logger = new Logger(RootAdminBootstrap.name);

  constructor(
    private readonly locks: DbLockService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    // Replicas starting together take turns, so exactly one creates the admin.
    await this.locks.withLock('bootstrap-root-admin', async (manager) => {
      if ((await manager.count(User)) > 0) return;
      const { ROOT_ADMIN_EMAIL, ROOT_ADMIN_PASSWORD } = this.config.env;
      if (this.config.isProduction && ROOT_ADMIN_PASSWORD === undefined) {
        // In production standard output is usually the log stream: never print a password there.
        this.logger.warn(
          'No users yet. Set ROOT_ADMIN_EMAIL and ROOT_ADMIN_PASSWORD, or run ' +
            '`npm run cli -- create-user --email … --role root_admin`.',
        );
        return;
      }
      const email = ROOT_ADMIN_EMAIL ?? 'admin@localhost';
      const password = ROOT_ADMIN_PASSWORD ?? generatePassword();
      await manager.save(
        manager.create(User, {
          email,
          role: Role.RootAdmin,
          organizationId: null,
          passwordHash: await hashPassword(password),
          mustChangePassword: ROOT_ADMIN_PASSWORD === undefined,
        }),
      );
      this.logger.warn({ email }, 'Created the first root admin');
      if (ROOT_ADMIN_PASSWORD === undefined) {
        process.stdout.write(
          `\n  First start: root admin created.\n    email:    ${email}\n    password: ${password}\n` +
            `  Sign in at ${this.config.publicBaseUrl}/login; you will be asked to change it.\n\n`,
        );
      }
    });
  }
}
