import { MiddlewareConsumer, Module, NestModule } from '@nestjs/common';
import { PassportModule } from '@nestjs/passport';
import { ThrottlerModule } from '@nestjs/throttler';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { MailModule } from 'src/mail/mail.module';
import { RootAdminBootstrap } from 'src/users/root-admin.bootstrap';
import { ThrottleCounterService } from 'src/users/throttle-counter.service';
import { UsersModule } from 'src/users/users.module';

import { AuthController } from './auth.controller';
import { AuthService } from './auth.service';
import { HttpSessionMiddleware } from './http-session.middleware';
import { LocalStrategy } from './local.strategy';
import { PgThrottlerStorage } from './pg-throttler.storage';
import { SessionSerializer } from './session.serializer';

/** Sign-in with server-side sessions, CSRF protection and login throttling. */
@Module({
  imports: [
    UsersModule,
    MailModule,
    PassportModule.register({ session: true }),
    ThrottlerModule.forRootAsync({
      imports: [UsersModule],
      inject: [APP_CONFIG, ThrottleCounterService],
      useFactory: (config: AppConfig, counters: ThrottleCounterService) => ({
        // Counted in PostgreSQL: every instance counts against the same limit per client.
        storage: new PgThrottlerStorage(counters),
        // Per client IP (req.ip: set TRUST_PROXY behind a proxy). Accounts lock separately, in the database.
        throttlers: [
          {
            // The one throttler (login and password change), named 'default' so that ThrottlerGuard's
            // 429 carries a plain `Retry-After` in seconds (another name would suffix the header).
            // Its counters are `default:<hash>` rows in throttle_counter.
            name: 'default',
            ttl: config.env.LOGIN_THROTTLE_WINDOW_SECONDS * 1000,
            limit: config.env.LOGIN_THROTTLE_LIMIT,
          },
        ],
      }),
    }),
  ],
  controllers: [AuthController],
  // RootAdminBootstrap runs with the web app only, not with the operator CLI.
  providers: [AuthService, LocalStrategy, SessionSerializer, HttpSessionMiddleware, RootAdminBootstrap],
})
export class AuthModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    // Every route. The FHIR gateway's requests never reach Express (its API key is its only
    // credential: no session, no cookie, nothing for CSRF to protect; src/gateway/README.md).
    consumer.apply(HttpSessionMiddleware).forRoutes('*');
  }
}
