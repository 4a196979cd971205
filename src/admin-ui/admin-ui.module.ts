import { Module } from '@nestjs/common';

import { ConnectionHealthModule } from 'src/connection-health/connection-health.module';
import { EpicAuthModule } from 'src/epic-auth/epic-auth.module';
import { OrganizationsModule } from 'src/organizations/organizations.module';

import { AdminLayout, AdminPageInterceptor } from './admin-page.interceptor';
import { AdminUiController } from './admin-ui.controller';
import { EpicRegistrationController } from './epic-registration.controller';
import { NotificationsPageController } from './notifications-page.controller';

/** Server-rendered consoles. Imports the feature modules; nothing imports it. */
@Module({
  imports: [OrganizationsModule, EpicAuthModule, ConnectionHealthModule],
  controllers: [AdminUiController, EpicRegistrationController, NotificationsPageController],
  providers: [AdminLayout, AdminPageInterceptor],
})
export class AdminUiModule {}
