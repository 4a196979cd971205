import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, Matches } from 'class-validator';

import { OrgScope, Roles } from 'src/common/decorators/auth.decorators';
import { JsonResponse, ManagementApi, QueryLimit, SessionRead } from 'src/openapi/openapi.decorators';
import { OrgIdParam } from 'src/organizations/dto/organization.dto';
import { Role } from 'src/users/user.types';

import type { GatewayAccessPage } from './gateway-traffic.types';
import { ACCESS_CURSOR, GatewayTrafficService } from './gateway-traffic.service';

class GatewayAccessQueryDto {
  @QueryLimit(500, 50, 'Records per page')
  limit?: number;

  @ApiPropertyOptional({
    description: 'The `nextBefore` of the previous page: the records older than its last one',
    pattern: ACCESS_CURSOR.source,
  })
  @IsOptional()
  @Matches(ACCESS_CURSOR, { message: 'before must be the nextBefore of a previous page' })
  before?: string;
}

/**
 * `GET /api/organizations/:orgId/gateway/access?limit=&before=`: the organization's gateway access
 * records, newest first (50 by default, at most 500), for its admins and root admins (another
 * organization's admin gets 404, @OrgScope).
 */
@Controller('api/organizations/:orgId/gateway/access')
@ManagementApi('Gateway access records')
export class GatewayAccessController {
  constructor(private readonly traffic: GatewayTrafficService) {}

  @SessionRead()
  @JsonResponse('GatewayAccessPage', 'A page of access records, newest first')
  @Get()
  @Roles(Role.RootAdmin, Role.OrgAdmin)
  @OrgScope()
  list(@Param() { orgId }: OrgIdParam, @Query() query: GatewayAccessQueryDto): Promise<GatewayAccessPage> {
    return this.traffic.page(orgId, { limit: query.limit ?? 50, before: query.before });
  }
}
