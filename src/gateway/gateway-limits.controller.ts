import { applyDecorators, Body, Controller, Get, Param, Put } from '@nestjs/common';
import { ApiOkResponse, ApiProperty } from '@nestjs/swagger';
import { IsInt, IsOptional, Max, Min, ValidateIf } from 'class-validator';

import { CurrentUser, OrgScope, Roles } from 'src/common/decorators/auth.decorators';
import { ManagementApi, SessionRead, SessionWrite } from 'src/openapi/openapi.decorators';
import { OrgIdParam } from 'src/organizations/dto/organization.dto';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { GatewayThrottleService } from './throttle/gateway-throttle.service';
import { CONCURRENCY_RANGE, RATE_RANGE } from './throttle/throttle-policy';

/** An optional whole number within `range` (the config's, env.schema.ts), or null for the default. */
const LimitOverride = (range: { min: number; max: number }, description: string): PropertyDecorator =>
  applyDecorators(
    ApiProperty({
      type: 'integer',
      minimum: range.min,
      maximum: range.max,
      nullable: true,
      required: false,
      description: `${description}; null restores the default`,
    }),
    IsOptional(),
    ValidateIf((_o, value) => value !== null),
    IsInt(),
    Min(range.min),
    Max(range.max),
  );

/** A root admin's override of an organization's gateway limits: a number sets it, null restores the default. */
class GatewayLimitsDto {
  @LimitOverride(RATE_RANGE, 'Requests the organization may start per second, all instances together')
  ratePerSecond?: number | null;

  @LimitOverride(CONCURRENCY_RANGE, 'Requests the organization may have in flight at once')
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
