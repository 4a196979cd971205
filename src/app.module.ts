import { DynamicModule, Module, ValidationPipe } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_PIPE } from '@nestjs/core';
import { EventEmitterModule } from '@nestjs/event-emitter';

import { AdminUiModule } from './admin-ui/admin-ui.module';
import { ApiKeysModule } from './api-keys/api-keys.module';
import { AuditModule } from './audit/audit.module';
import { AuthModule } from './auth/auth.module';
import { ClientKeysModule } from './client-keys/client-keys.module';
import { validationPipeError } from './common/errors/field-errors';
import { HttpErrorFilter } from './common/filters/http-error.filter';
import { AuthenticatedGuard } from './common/guards/authenticated.guard';
import { InputTextGuard } from './common/guards/input-text.guard';
import { OrgScopeGuard } from './common/guards/org-scope.guard';
import { RolesGuard } from './common/guards/roles.guard';
import { AppConfigModule } from './config/app-config.module';
import { ConnectionHealthModule } from './connection-health/connection-health.module';
import { CryptoModule } from './crypto/crypto.module';
import { EpicAuthModule } from './epic-auth/epic-auth.module';
import { FhirClientModule } from './fhir-client/fhir-client.module';
import { GatewayModule } from './gateway/gateway.module';
import { MetricsModule } from './metrics/metrics.module';
import { DatabaseModule } from './database/database.module';
import { LoggingModule } from './logging/logging.module';
import { OrganizationsModule } from './organizations/organizations.module';
import { OutboundModule } from './outbound/outbound.module';

/**
 * Infrastructure first, then the feature modules. Pipes, guards and filters are providers here
 * (not set in main.ts) so the test app runs exactly the production stack.
 * Create it with AppModule.forRoot(), which validates the environment at that moment.
 */
@Module({
  imports: [
    LoggingModule,
    EventEmitterModule.forRoot(),
    DatabaseModule,
    CryptoModule,
    OutboundModule,
    AuditModule,
    MetricsModule,
    AuthModule,
    ClientKeysModule,
    OrganizationsModule,
    ApiKeysModule,
    EpicAuthModule,
    FhirClientModule,
    ConnectionHealthModule,
    GatewayModule,
    AdminUiModule,
  ],
  providers: [
    {
      provide: APP_PIPE,
      useValue: new ValidationPipe({
        whitelist: true,
        forbidNonWhitelisted: true,
        transform: true,
        // 400 VALIDATION_FAILED with `fields`: the shape of every field error (src/common/README.md).
        exceptionFactory: validationPipeError,
      }),
    },
    // Every error, one code list: a page on @HtmlRoutes routes, JSON elsewhere.
    { provide: APP_FILTER, useClass: HttpErrorFilter },
    // Order matters: who you are, then what your role allows, then which organization, then
    // whether the input is text at all (no control characters) before any handler or query sees it.
    { provide: APP_GUARD, useClass: AuthenticatedGuard },
    { provide: APP_GUARD, useClass: RolesGuard },
    { provide: APP_GUARD, useClass: OrgScopeGuard },
    { provide: APP_GUARD, useClass: InputTextGuard },
  ],
})
export class AppModule {
  /** Reads and validates the environment now: call once per app. */
  static forRoot(): DynamicModule {
    return { module: AppModule, imports: [AppConfigModule.forRoot()] };
  }
}
