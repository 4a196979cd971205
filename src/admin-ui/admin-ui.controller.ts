import { Body, Controller, Get, Param, Post, Query, Render, Res, UseInterceptors } from '@nestjs/common';
import { Response } from 'express';

import { AuditService } from 'src/audit/audit.service';
import { CsrfToken, CurrentUser, HtmlRoutes, OrgScope, Roles } from 'src/common/decorators/auth.decorators';
import { CreateOrgAdminDto, CreateOrganizationDto, OrgIdParam } from 'src/organizations/dto/organization.dto';
import { OrganizationsService } from 'src/organizations/organizations.service';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { AdminPageInterceptor } from './admin-page.interceptor';
import { toOrganizationRow } from './view-models/organization-row';

/** The admin consoles (server-rendered). The AdminUi issue grows these into the full consoles. */
@Controller('admin')
@HtmlRoutes()
@Roles(Role.RootAdmin, Role.OrgAdmin)
@UseInterceptors(AdminPageInterceptor)
export class AdminUiController {
  constructor(
    private readonly organizations: OrganizationsService,
    private readonly audit: AuditService,
  ) {}

  @Get()
  @Roles(Role.RootAdmin)
  @Render('admin/organizations')
  async organizationsPage(@CurrentUser() user: AuthUser, @CsrfToken() csrfToken: string): Promise<object> {
    const now = new Date();
    const rows = (await this.organizations.list({ limit: 500 })).map((o) => toOrganizationRow(o, now));
    return { title: 'Organizations', user, csrfToken, rows };
  }

  @Post('organizations')
  @Roles(Role.RootAdmin)
  async createOrganization(
    @CurrentUser() user: AuthUser,
    @Body() dto: CreateOrganizationDto,
    @Res() res: Response,
  ): Promise<void> {
    const org = await this.organizations.create(user, dto);
    res.redirect(303, `/admin/organizations/${org.id}`);
  }

  @Get('organizations/:orgId')
  @OrgScope()
  @Render('admin/organization')
  async organizationPage(
    @CurrentUser() user: AuthUser,
    @Param() { orgId }: OrgIdParam,
    @CsrfToken() csrfToken: string,
    @Query('connected') connected?: string,
  ): Promise<object> {
    const org = await this.organizations.get(orgId);
    const [admins, events] = await Promise.all([
      this.organizations.listAdmins(orgId),
      this.audit.list({ organizationId: orgId, limit: 20 }),
    ]);
    return {
      title: org.name,
      user,
      csrfToken,
      org,
      row: toOrganizationRow(org, new Date()),
      admins,
      events,
      isRoot: user.role === Role.RootAdmin,
      flash: connected === '1' && org.isConnected ? 'Connected to Epic.' : undefined,
    };
  }

  @Post('organizations/:orgId/admins')
  @Roles(Role.RootAdmin)
  @Render('admin/admin-created')
  async createOrgAdmin(
    @CurrentUser() user: AuthUser,
    @Param() { orgId }: OrgIdParam,
    @Body() dto: CreateOrgAdminDto,
  ): Promise<object> {
    const { user: created, temporaryPassword } = await this.organizations.createOrgAdmin(user, orgId, dto);
    return { title: 'Admin created', user, orgId, created, temporaryPassword };
  }

  @Post('organizations/:orgId/delete')
  @Roles(Role.RootAdmin)
  async deleteOrganization(
    @CurrentUser() user: AuthUser,
    @Param() { orgId }: OrgIdParam,
    @Res() res: Response,
  ): Promise<void> {
    await this.organizations.remove(user, orgId);
    res.redirect(303, '/admin');
  }
}
