import { MiddlewareConsumer, Module, NestModule } from '@nestjs/common';

import { ApiKeysModule } from 'src/api-keys/api-keys.module';
import { ClientKeysModule } from 'src/client-keys/client-keys.module';
import { ConnectionsModule } from 'src/connections/connections.module';
import { ConnectionHealthModule } from 'src/connection-health/connection-health.module';
import { EpicAuthModule } from 'src/epic-auth/epic-auth.module';
import { FhirClientModule } from 'src/fhir-client/fhir-client.module';
import { GatewayThrottleModule } from 'src/gateway/throttle/gateway-throttle.module';
import { GatewayTrafficModule } from 'src/gateway/traffic/gateway-traffic.module';
import { OrganizationsModule } from 'src/organizations/organizations.module';

import { AdminLayout, AdminPageInterceptor } from './admin-page.interceptor';
import { AdminUiController } from './admin-ui.controller';
import { ApiKeysPageController } from './api-keys-page.controller';
import { EpicRegistrationController } from './epic-registration.controller';
import { KeysPageController } from './keys-page.controller';
import { LaunchPagesController } from './launch-pages.controller';
import { NotificationsPageController } from './notifications-page.controller';
import { ApiKeysPageBuilder } from './page-builders/api-keys-page.builder';
import { KeysPageBuilder } from './page-builders/keys-page.builder';
import { LaunchPagesBuilder } from './page-builders/launch-pages.builder';
import { OrganizationPagesBuilder } from './page-builders/organization-pages.builder';
import { RegistrationPageBuilder } from './page-builders/registration-page.builder';
import { PatientPagesController } from './patient-pages.controller';
import { RegistrationOrgRedirectMiddleware } from './registration-org.middleware';

/** Server-rendered consoles. Imports the feature modules; nothing imports it. */
@Module({
  imports: [
    OrganizationsModule,
    ConnectionsModule,
    EpicAuthModule,
    FhirClientModule,
    ConnectionHealthModule,
    ClientKeysModule,
    ApiKeysModule,
    GatewayTrafficModule,
    // The organization page's gateway limits (GatewayThrottleService: the same instance as the
    // gateway's, so an override applies at once on this instance).
    GatewayThrottleModule,
  ],
  controllers: [
    AdminUiController,
    EpicRegistrationController,
    NotificationsPageController,
    KeysPageController,
    ApiKeysPageController,
    LaunchPagesController,
    PatientPagesController,
  ],
  providers: [
    AdminLayout,
    AdminPageInterceptor,
    OrganizationPagesBuilder,
    RegistrationPageBuilder,
    KeysPageBuilder,
    ApiKeysPageBuilder,
    LaunchPagesBuilder,
  ],
})
export class AdminUiModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(RegistrationOrgRedirectMiddleware).forRoutes(EpicRegistrationController);
  }
}
