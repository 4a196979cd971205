import { Controller, Get, HttpCode, Param, ParseUUIDPipe, Post, Query } from '@nestjs/common';
import { IsBoolean, IsInt, IsOptional, Max, Min } from 'class-validator';
import { Transform, Type } from 'class-transformer';

import { CurrentUser, Roles } from 'src/common/decorators/auth.decorators';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { NotificationsService, NotificationView } from './notifications.service';

class NotificationQuery {
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(200)
  limit?: number;

  @IsOptional()
  @Transform(({ value }) => value === 'true' || value === true)
  @IsBoolean()
  unread?: boolean;
}

/** Connection notifications for admins: org admins see their organization's, root admins all. */
@Controller('api/notifications')
@Roles(Role.RootAdmin, Role.OrgAdmin)
export class NotificationsController {
  constructor(private readonly notifications: NotificationsService) {}

  @Get()
  list(@CurrentUser() user: AuthUser, @Query() query: NotificationQuery): Promise<NotificationView[]> {
    return this.notifications.list(user, { limit: query.limit, unreadOnly: query.unread });
  }

  @Get('unread-count')
  async unreadCount(@CurrentUser() user: AuthUser): Promise<{ unread: number }> {
    return { unread: await this.notifications.unreadCount(user) };
  }

  @Post('read-all')
  @HttpCode(200)
  async readAll(@CurrentUser() user: AuthUser): Promise<{ marked: number }> {
    return { marked: await this.notifications.markAllRead(user) };
  }

  @Post(':id/read')
  @HttpCode(204)
  async read(@CurrentUser() user: AuthUser, @Param('id', new ParseUUIDPipe()) id: string): Promise<void> {
    await this.notifications.markRead(user, id);
  }
}
