import { Controller, Get, Param, Query } from '@nestjs/common';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, Matches, Max, Min } from 'class-validator';

import { OrgScope, Roles } from 'src/common/decorators/auth.decorators';
import { OrgIdParam } from 'src/organizations/dto/organization.dto';
import { Role } from 'src/users/user.types';

import type { GatewayAccessPage } from './gateway-traffic.types';
import { ACCESS_CURSOR, GatewayTrafficService } from './gateway-traffic.service';

class GatewayAccessQueryDto {
  @IsOptional() @Type(() => Number) @IsInt() @Min(1) @Max(500) limit?: number;

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
export class GatewayAccessController {
  constructor(private readonly traffic: GatewayTrafficService) {}

  @Get()
  @Roles(Role.RootAdmin, Role.OrgAdmin)
  @OrgScope()
  list(@Param() { orgId }: OrgIdParam, @Query() query: GatewayAccessQueryDto): Promise<GatewayAccessPage> {
    return this.traffic.page(orgId, { limit: query.limit ?? 50, before: query.before });
  }
}
