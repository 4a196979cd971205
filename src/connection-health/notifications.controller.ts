import { Controller, Get, HttpCode, Param, ParseUUIDPipe, Post, Query } from '@nestjs/common';
import { ApiParam, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsOptional } from 'class-validator';
import { Transform } from 'class-transformer';

import { CurrentUser, Roles } from 'src/common/decorators/auth.decorators';
import {
  JsonResponse,
  ManagementApi,
  NoContentResponse,
  QueryLimit,
  SessionRead,
  SessionWrite,
} from 'src/openapi/openapi.decorators';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { NotificationsService, NotificationView } from './notifications.service';

class NotificationQuery {
  @QueryLimit(200, 50, 'At most this many, newest first')
  limit?: number;

  @ApiPropertyOptional({ type: 'boolean', description: '`true`: only the ones this user has not read' })
  @IsOptional()
  @Transform(({ value }) => value === 'true' || value === true)
  @IsBoolean()
  unread?: boolean;
}

/** Connection notifications for admins: org admins see their organization's, root admins all. */
@Controller('api/notifications')
@ManagementApi('Notifications')
@Roles(Role.RootAdmin, Role.OrgAdmin)
export class NotificationsController {
  constructor(private readonly notifications: NotificationsService) {}

  @SessionRead()
  @JsonResponse(['Notification'], "The user's notifications, newest first")
  @Get()
  list(@CurrentUser() user: AuthUser, @Query() query: NotificationQuery): Promise<NotificationView[]> {
    return this.notifications.list(user, { limit: query.limit, unreadOnly: query.unread });
  }

  @SessionRead()
  @JsonResponse('UnreadCount', 'How many this user has not read')
  @Get('unread-count')
  async unreadCount(@CurrentUser() user: AuthUser): Promise<{ unread: number }> {
    return { unread: await this.notifications.unreadCount(user) };
  }

  @SessionWrite()
  @JsonResponse('MarkedRead', 'Every notification this user sees is read')
  @Post('read-all')
  @HttpCode(200)
  async readAll(@CurrentUser() user: AuthUser): Promise<{ marked: number }> {
    return { marked: await this.notifications.markAllRead(user) };
  }

  @SessionWrite()
  @ApiParam({ name: 'id', format: 'uuid', description: 'The notification' })
  @NoContentResponse('Read')
  @Post(':id/read')
  @HttpCode(204)
  async read(@CurrentUser() user: AuthUser, @Param('id', new ParseUUIDPipe()) id: string): Promise<void> {
    await this.notifications.markRead(user, id);
  }
}
