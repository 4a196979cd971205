import { Module } from '@nestjs/common';

import { OrganizationsModule } from 'src/organizations/organizations.module';

import { AdminUiController } from './admin-ui.controller';

/** Server-rendered consoles. Imports the feature modules; nothing imports it. */
@Module({
  imports: [OrganizationsModule],
  controllers: [AdminUiController],
})
export class AdminUiModule {}
