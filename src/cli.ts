import { LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DataSource } from 'typeorm';

import { AuditModule } from './audit/audit.module';
import { AuditService } from './audit/audit.service';
import { AppConfigModule } from './config/app-config.module';
import { CryptoModule } from './crypto/crypto.module';
import { DatabaseModule } from './database/database.module';
import { DataDirInUseError } from './database/embedded-postgres';
import { generatePassword } from './users/password-hasher';
import { PASSWORD_MIN_LENGTH, Role } from './users/user.types';
import { UsersModule } from './users/users.module';
import { UsersService } from './users/users.service';

const USAGE = `Usage: npm run cli -- <command> [options]

Commands:
  create-user --email <email> --role <root_admin|org_admin|provider|patient> [--org <slug>]
      Creates a user with a generated password (printed once; must be changed at first login).
      Set CLI_PASSWORD in the environment to choose the password instead.
  reset-password --email <email>
      Sets a new generated password (printed once) and unlocks the account.
  disable-user --email <email> | enable-user --email <email>
`;

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** The words of a log call: `(message)`, `(message, context)` or pino-style `(object, message)`. */
function words(message: unknown, rest: unknown[]): string {
  if (message instanceof Error) return message.message;
  if (typeof message === 'string') return message;
  const text = rest.find((r) => typeof r === 'string');
  return typeof text === 'string' ? text : String(message);
}

/**
 * The operator reads the CLI's output: warnings and errors as one line each, never a stack trace.
 * Nest's own report of a failed start (context ExceptionHandler) is left out: main() reports it.
 */
const cliLogger: LoggerService = {
  log: () => undefined,
  debug: () => undefined,
  verbose: () => undefined,
  warn: (message: unknown, ...rest: unknown[]) => process.stderr.write(`warning: ${words(message, rest)}\n`),
  error: (message: unknown, ...rest: unknown[]) => {
    if (rest.at(-1) === 'ExceptionHandler') return;
    process.stderr.write(`error: ${words(message, rest)}\n`);
  },
  fatal: (message: unknown, ...rest: unknown[]) => process.stderr.write(`error: ${words(message, rest)}\n`),
};

/** Operator commands against the configured database (DATABASE_URL, or the embedded one when stopped). */
async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (!command || command === '--help' || command === 'help') {
    out(USAGE);
    return command ? 0 : 2;
  }
  const app = await NestFactory.createApplicationContext(
    {
      module: class CliModule {},
      imports: [AppConfigModule.forRoot(), DatabaseModule, CryptoModule, AuditModule, UsersModule],
    },
    // abortOnError: false, so a failed start (e.g. the embedded database in use) reaches the catch below.
    { logger: cliLogger, abortOnError: false },
  );
  try {
    const users = app.get(UsersService);
    const audit = app.get(AuditService);
    const operator = { actor: null, detail: { via: 'cli' } };
    const email = arg(args, 'email');
    if (!email) throw new Error('--email is required');
    switch (command) {
      case 'create-user': {
        const role = arg(args, 'role') as Role | undefined;
        if (!role || !Object.values(Role).includes(role)) {
          throw new Error('--role must be one of ' + Object.values(Role).join(', '));
        }
        let organizationId: string | null = null;
        if (role !== Role.RootAdmin) {
          const slug = arg(args, 'org');
          if (!slug) throw new Error('--org <slug> is required for this role');
          const [org] = await app
            .get(DataSource)
            .query<{ id: string }[]>('SELECT id FROM organization WHERE slug = $1', [slug]);
          if (!org) throw new Error(`No organization with the slug "${slug}"`);
          organizationId = org.id;
        }
        const chosen = process.env.CLI_PASSWORD || undefined;
        if (chosen !== undefined && chosen.length < PASSWORD_MIN_LENGTH) {
          throw new Error(`CLI_PASSWORD must be at least ${PASSWORD_MIN_LENGTH} characters`);
        }
        const { user, generatedPassword } = await users.create({
          email,
          role,
          organizationId,
          password: chosen,
        });
        await audit.record({
          ...operator,
          action: 'user.created',
          detail: { via: 'cli', userId: user.id, email: user.email, role },
        });
        out(`Created ${user.role} ${user.email} (${user.id}).`);
        if (generatedPassword) {
          out(`Temporary password (shown once, must be changed at first login): ${generatedPassword}`);
        }
        return 0;
      }
      case 'reset-password': {
        const user = await users.findByEmail(email);
        if (!user) throw new Error(`No user with the email ${email}`);
        const password = generatePassword();
        await users.setPassword(user.id, password, true);
        await audit.record({
          ...operator,
          action: 'user.password-reset',
          detail: { via: 'cli', userId: user.id },
        });
        out(
          `New temporary password for ${user.email} (shown once, must be changed at first login): ${password}`,
        );
        return 0;
      }
      case 'disable-user':
      case 'enable-user': {
        const user = await users.findByEmail(email);
        if (!user) throw new Error(`No user with the email ${email}`);
        await users.setDisabled(user.id, command === 'disable-user');
        await audit.record({
          ...operator,
          action: `user.${command === 'disable-user' ? 'disabled' : 'enabled'}`,
          detail: { via: 'cli', userId: user.id },
        });
        out(`${user.email} is now ${command === 'disable-user' ? 'disabled' : 'enabled'}.`);
        return 0;
      }
      default:
        out(USAGE);
        return 2;
    }
  } finally {
    await app.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const message =
      error instanceof DataDirInUseError
        ? `the embedded database in ${error.dataDir} is in use by the running service (pid ${error.pid}). ` +
          'Stop the service first: the embedded database serves one process at a time.'
        : error instanceof Error
          ? error.message
          : String(error);
    process.stderr.write(`error: ${message}\n`);
    process.exit(1);
  },
);
