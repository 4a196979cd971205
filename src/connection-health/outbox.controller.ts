import { Controller, Get, HttpCode, Param, ParseUUIDPipe, Post, Query } from '@nestjs/common';
import { ApiParam, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional } from 'class-validator';

import { CurrentUser, Roles } from 'src/common/decorators/auth.decorators';
import {
  JsonResponse,
  ManagementApi,
  QueryLimit,
  SessionRead,
  SessionWrite,
} from 'src/openapi/openapi.decorators';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { OUTBOX_STATUSES, OutboxAdminService, OutboxEntryView, OutboxStatus } from './outbox-admin.service';

class OutboxQuery {
  @ApiPropertyOptional({
    enum: OUTBOX_STATUSES,
    default: 'failed',
    description: '`failed`: the dead letters',
  })
  @IsOptional()
  @IsIn(OUTBOX_STATUSES)
  status?: OutboxStatus;

  @QueryLimit(500, 100, 'At most this many, newest first')
  limit?: number;
}

/**
 * The notification outbox's deliveries (email and webhook) for root admins: the dead letters
 * (`failed`: parked after the last attempt) and Retry. Recipient addresses are shown, never a body.
 */
@Controller('api/notifications/outbox')
@ManagementApi('Notifications')
@Roles(Role.RootAdmin)
export class OutboxController {
  constructor(private readonly outbox: OutboxAdminService) {}

  @SessionRead()
  @JsonResponse(['OutboxEntry'], 'Deliveries in this status (default `failed`), newest first')
  @Get()
  list(@Query() query: OutboxQuery): Promise<OutboxEntryView[]> {
    return this.outbox.list(query.status ?? 'failed', query.limit);
  }

  @SessionWrite()
  @ApiParam({ name: 'id', format: 'uuid', description: 'The failed delivery' })
  @JsonResponse('OutboxEntry', 'Back to pending, due now, attempts reset (audited)')
  @Post(':id/retry')
  @HttpCode(200)
  retry(
    @CurrentUser() user: AuthUser,
    @Param('id', new ParseUUIDPipe()) id: string,
  ): Promise<OutboxEntryView> {
    return this.outbox.retry(user, id);
  }
}
