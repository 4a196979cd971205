import { Module } from '@nestjs/common';

import { ConnectionHealthModule } from 'src/connection-health/connection-health.module';
import { OrganizationsModule } from 'src/organizations/organizations.module';

import { AdminPageInterceptor } from './admin-page.interceptor';
import { AdminUiController } from './admin-ui.controller';
import { NotificationsPageController } from './notifications-page.controller';

/** Server-rendered consoles. Imports the feature modules; nothing imports it. */
@Module({
  imports: [OrganizationsModule, ConnectionHealthModule],
  controllers: [AdminUiController, NotificationsPageController],
  providers: [AdminPageInterceptor],
})
export class AdminUiModule {}
