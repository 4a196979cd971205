import {
  Controller,
  Get,
  Param,
  ParseUUIDPipe,
  Post,
  Query,
  Render,
  Res,
  UseInterceptors,
} from '@nestjs/common';
import { Response } from 'express';

import { CsrfToken, CurrentUser, HtmlRoutes, Roles } from 'src/common/decorators/auth.decorators';
import { NotificationsService } from 'src/connection-health/notifications.service';
import { OutboxAdminService } from 'src/connection-health/outbox-admin.service';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { AdminPageInterceptor } from './admin-page.interceptor';
import { NotificationsPage, notificationsPage } from './view-models/notifications-page';

/** How many failed deliveries the page lists (the JSON route pages further). */
const FAILED_SHOWN = 100;

/**
 * The admin's connection notifications: newest first, unread marked, mark as read. Root admins also
 * see the outbox's failed deliveries (email and webhook: recipient, attempts, last error; never a
 * message body) with a Retry each (audited).
 */
@Controller('admin/notifications')
@HtmlRoutes()
@Roles(Role.RootAdmin, Role.OrgAdmin)
@UseInterceptors(AdminPageInterceptor)
export class NotificationsPageController {
  constructor(
    private readonly notifications: NotificationsService,
    private readonly outbox: OutboxAdminService,
  ) {}

  @Get()
  @Render('admin/notifications')
  async page(
    @CurrentUser() user: AuthUser,
    @CsrfToken() csrfToken: string,
    @Query('retried') retried?: string,
  ): Promise<NotificationsPage> {
    const failed = user.role === Role.RootAdmin ? await this.outbox.list('failed', FAILED_SHOWN) : [];
    return notificationsPage({ user, csrfToken }, await this.notifications.list(user, { limit: 100 }), {
      failed,
      retried: retried === '1',
    });
  }

  /** Root admins: a failed delivery back to pending, attempts reset (audited). */
  @Post('outbox/:id/retry')
  @Roles(Role.RootAdmin)
  async retry(
    @CurrentUser() user: AuthUser,
    @Param('id', new ParseUUIDPipe()) id: string,
    @Res() res: Response,
  ): Promise<void> {
    await this.outbox.retry(user, id);
    res.redirect(303, '/admin/notifications?retried=1#failed-deliveries');
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
