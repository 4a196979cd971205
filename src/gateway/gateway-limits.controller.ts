import { Body, Controller, Get, Param, Put } from '@nestjs/common';
import { IsInt, IsOptional, Max, Min, ValidateIf } from 'class-validator';

import { CurrentUser, OrgScope, Roles } from 'src/common/decorators/auth.decorators';
import { OrgIdParam } from 'src/organizations/dto/organization.dto';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { GatewayThrottleService } from './throttle/gateway-throttle.service';
import { ApiOkResponse, ApiProperty } from '@nestjs/swagger';
import { ManagementApi, SessionRead, SessionWrite } from 'src/openapi/openapi.decorators';

/** A root admin's override of an organization's gateway limits: a number sets it, null restores the default. */
class GatewayLimitsDto {
  @ApiProperty({
    type: 'integer',
    minimum: 1,
    maximum: 10_000,
    nullable: true,
    required: false,
    description: 'null: the default',
  })
  @IsOptional()
  @ValidateIf((_o, value) => value !== null)
  @IsInt()
  @Min(1)
  @Max(10_000)
  ratePerSecond?: number | null;

  @ApiProperty({
    type: 'integer',
    minimum: 1,
    maximum: 1_000,
    nullable: true,
    required: false,
    description: 'null: the default',
  })
  @IsOptional()
  @ValidateIf((_o, value) => value !== null)
  @IsInt()
  @Min(1)
  @Max(1_000)
  concurrency?: number | null;
}

/**
 * The FHIR gateway's per-organization limits (GatewayThrottleService): its admins may read them,
 * a root admin may override them (audited `gateway-limits.changed`).
 */
@Controller('api/organizations/:orgId/gateway-limits')
@ManagementApi('Gateway limits')
export class GatewayLimitsController {
  constructor(private readonly throttle: GatewayThrottleService) {}

  @SessionRead()
  @ApiOkResponse({
    description: 'The limits in force',
    schema: { $ref: '#/components/schemas/GatewayLimits' },
  })
  @Get()
  @Roles(Role.RootAdmin, Role.OrgAdmin)
  @OrgScope()
  limits(@Param() { orgId }: OrgIdParam): Promise<{ ratePerSecond: number; concurrency: number }> {
    return this.throttle.limits(orgId);
  }

  @SessionWrite()
  @ApiOkResponse({
    description: 'The limits in force',
    schema: { $ref: '#/components/schemas/GatewayLimits' },
  })
  @Put()
  @Roles(Role.RootAdmin)
  async override(
    @CurrentUser() user: AuthUser,
    @Param() { orgId }: OrgIdParam,
    @Body() dto: GatewayLimitsDto,
  ): Promise<{ ratePerSecond: number; concurrency: number }> {
    await this.throttle.setOverride(user, orgId, dto);
    return this.throttle.limits(orgId);
  }
}
