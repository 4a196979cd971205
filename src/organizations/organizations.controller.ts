import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Put, Query } from '@nestjs/common';
import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';

import { AuditQuery } from 'src/audit/audit-query.dto';
import { AuditEventView, AuditService } from 'src/audit/audit.service';
import { CurrentUser, OrgScope, Roles } from 'src/common/decorators/auth.decorators';
import { Role } from 'src/users/user.types';
import { AuthUser, UserView } from 'src/users/user.view';

import {
  CreateOrgAdminDto,
  CreateOrganizationDto,
  OrgIdParam,
  RegisterEpicClientDto,
  UpdateOrganizationDto,
} from './dto/organization.dto';
import { OrganizationJson } from './dto/organization.view';
import { OrganizationsService } from './organizations.service';
import {
  JsonResponse,
  ManagementApi,
  NoContentResponse,
  QueryLimit,
  SessionRead,
  SessionWrite,
} from 'src/openapi/openapi.decorators';

class ListQuery {
  @ApiPropertyOptional({
    maxLength: 200,
    description: 'Root admins: only names containing this (case-insensitive)',
  })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  search?: string;

  @QueryLimit(500, 100, 'Root admins: page size, by name')
  limit?: number;

  // Bounded: 1e20 is an integer to JavaScript but past what PostgreSQL's OFFSET takes.
  @ApiPropertyOptional({
    type: 'integer',
    minimum: 0,
    maximum: 1_000_000_000,
    default: 0,
    description: 'Root admins: skip this many',
  })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(1_000_000_000)
  offset?: number;
}

/** JSON API for organizations. Root admins manage all; org admins see and configure their own. */
@Controller('api/organizations')
@ManagementApi('Organizations')
export class OrganizationsController {
  constructor(
    private readonly organizations: OrganizationsService,
    private readonly audit: AuditService,
  ) {}

  @SessionRead()
  @JsonResponse(['Organization'], 'Root admins: every organization (paged); org admins: their own')
  @Get()
  @Roles(Role.RootAdmin, Role.OrgAdmin)
  async list(@CurrentUser() user: AuthUser, @Query() query: ListQuery): Promise<OrganizationJson[]> {
    const views =
      user.role === Role.RootAdmin
        ? await this.organizations.list(query)
        : [await this.organizations.get(user.organizationId!)];
    return this.organizations.withConnections(views);
  }

  @SessionWrite()
  @JsonResponse('Organization', 'Created', 201)
  @Post()
  @Roles(Role.RootAdmin)
  async create(@CurrentUser() user: AuthUser, @Body() dto: CreateOrganizationDto): Promise<OrganizationJson> {
    return this.organizations.withConnection(await this.organizations.create(user, dto));
  }

  @SessionRead()
  @JsonResponse('Organization', 'The organization')
  @Get(':orgId')
  @Roles(Role.RootAdmin, Role.OrgAdmin)
  @OrgScope()
  async get(@Param() { orgId }: OrgIdParam): Promise<OrganizationJson> {
    return this.organizations.withConnection(await this.organizations.get(orgId));
  }

  @SessionWrite()
  @JsonResponse('Organization', 'Updated')
  @Patch(':orgId')
  @Roles(Role.RootAdmin)
  async update(
    @CurrentUser() user: AuthUser,
    @Param() { orgId }: OrgIdParam,
    @Body() dto: UpdateOrganizationDto,
  ): Promise<OrganizationJson> {
    return this.organizations.withConnection(await this.organizations.update(user, orgId, dto));
  }

  @SessionWrite()
  @NoContentResponse('Deleted (audited)')
  @Delete(':orgId')
  @HttpCode(204)
  @Roles(Role.RootAdmin)
  remove(@CurrentUser() user: AuthUser, @Param() { orgId }: OrgIdParam): Promise<void> {
    return this.organizations.remove(user, orgId);
  }

  @SessionWrite()
  @JsonResponse('RegisteredEpicClient', 'Registered')
  @Put(':orgId/epic-client')
  @Roles(Role.RootAdmin, Role.OrgAdmin)
  @OrgScope()
  async registerEpicClient(
    @CurrentUser() user: AuthUser,
    @Param() { orgId }: OrgIdParam,
    @Body() dto: RegisterEpicClientDto,
  ): Promise<OrganizationJson & { secretCleared: boolean }> {
    return this.organizations.withConnection(await this.organizations.registerEpicClient(user, orgId, dto));
  }

  @SessionRead()
  @JsonResponse(['User'], "The organization's admins")
  @Get(':orgId/admins')
  @Roles(Role.RootAdmin, Role.OrgAdmin)
  @OrgScope()
  listAdmins(@Param() { orgId }: OrgIdParam): Promise<UserView[]> {
    return this.organizations.listAdmins(orgId);
  }

  @SessionWrite()
  @JsonResponse('CreatedOrgAdmin', 'Created', 201)
  @Post(':orgId/admins')
  @Roles(Role.RootAdmin)
  createAdmin(
    @CurrentUser() user: AuthUser,
    @Param() { orgId }: OrgIdParam,
    @Body() dto: CreateOrgAdminDto,
  ): Promise<{ user: UserView; temporaryPassword?: string }> {
    return this.organizations.createOrgAdmin(user, orgId, dto);
  }

  @SessionRead()
  @JsonResponse(['AuditEvent'], "The organization's audit events, newest first")
  @Get(':orgId/audit-events')
  @Roles(Role.RootAdmin, Role.OrgAdmin)
  @OrgScope()
  async auditEvents(@Param() { orgId }: OrgIdParam, @Query() query: AuditQuery): Promise<AuditEventView[]> {
    await this.organizations.get(orgId);
    return this.audit.list({ organizationId: orgId, limit: query.limit });
  }
}
