import { Controller, Get, Param, ParseUUIDPipe, Post, Render, Res, UseInterceptors } from '@nestjs/common';
import { Response } from 'express';

import { CsrfToken, CurrentUser, HtmlRoutes, Roles } from 'src/common/decorators/auth.decorators';
import { NotificationsService } from 'src/connection-health/notifications.service';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { AdminPageInterceptor } from './admin-page.interceptor';
import { NotificationsPage, notificationsPage } from './view-models/notifications-page';

/** The admin's connection notifications: newest first, unread marked, mark as read. */
@Controller('admin/notifications')
@HtmlRoutes()
@Roles(Role.RootAdmin, Role.OrgAdmin)
@UseInterceptors(AdminPageInterceptor)
export class NotificationsPageController {
  constructor(private readonly notifications: NotificationsService) {}

  @Get()
  @Render('admin/notifications')
  async page(@CurrentUser() user: AuthUser, @CsrfToken() csrfToken: string): Promise<NotificationsPage> {
    return notificationsPage({ user, csrfToken }, await this.notifications.list(user, { limit: 100 }));
  }

  @Post('read-all')
  async readAll(@CurrentUser() user: AuthUser, @Res() res: Response): Promise<void> {
    await this.notifications.markAllRead(user);
    res.redirect(303, '/admin/notifications');
  }

  @Post(':id/read')
  async read(
    @CurrentUser() user: AuthUser,
    @Param('id', new ParseUUIDPipe()) id: string,
    @Res() res: Response,
  ): Promise<void> {
    await this.notifications.markRead(user, id);
    res.redirect(303, '/admin/notifications');
  }
}
