import { Body, Controller, Get, Param, Post, Query, Render, Req, Res, UseInterceptors } from '@nestjs/common';
import { Request, Response } from 'express';

import { CsrfToken, CurrentUser, HtmlRoutes, OrgScope, Roles } from 'src/common/decorators/auth.decorators';
import {
  CreateOrgAdminDto,
  CreateOrganizationDto,
  OrgIdParam,
  UpdateOrganizationDto,
} from 'src/organizations/dto/organization.dto';
import { OrganizationsService } from 'src/organizations/organizations.service';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { AdminPageInterceptor } from './admin-page.interceptor';
import { ConsoleQueryDto } from './dto/console-query.dto';
import { OrganizationPagesBuilder } from './page-builders/organization-pages.builder';
import { ConsolePage } from './view-models/console-page';
import { PostedGatewayLimitsForm } from './view-models/gateway-limits';
import { AdminCreatedPage, adminCreatedPage, OrganizationPage } from './view-models/organization-page';

/** The admin consoles (server-rendered). */
@Controller('admin')
@HtmlRoutes()
@Roles(Role.RootAdmin, Role.OrgAdmin)
@UseInterceptors(AdminPageInterceptor)
export class AdminUiController {
  constructor(
    private readonly organizations: OrganizationsService,
    private readonly pages: OrganizationPagesBuilder,
  ) {}

  @Get()
  @Roles(Role.RootAdmin)
  @Render('admin/organizations')
  organizationsPage(
    @CurrentUser() user: AuthUser,
    @CsrfToken() csrfToken: string,
    @Query() query: ConsoleQueryDto,
  ): Promise<ConsolePage> {
    return this.pages.console({ user, csrfToken }, query);
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
  organizationPage(
    @CurrentUser() user: AuthUser,
    @Param() { orgId }: OrgIdParam,
    @CsrfToken() csrfToken: string,
    @Query('connected') connected?: string,
  ): Promise<OrganizationPage> {
    return this.pages.organization({ user, csrfToken }, orgId, { connected: connected === '1' });
  }

  @Post('organizations/:orgId/admins')
  @Roles(Role.RootAdmin)
  @Render('admin/admin-created')
  async createOrgAdmin(
    @CurrentUser() user: AuthUser,
    @Param() { orgId }: OrgIdParam,
    @Body() dto: CreateOrgAdminDto,
  ): Promise<AdminCreatedPage> {
    return adminCreatedPage(user, orgId, await this.organizations.createOrgAdmin(user, orgId, dto));
  }

  /**
   * Sets or clears the organization's gateway limits override (root admins; org admins see the
   * limits read-only): back to the page with the limits now in force (303), or 400 with the
   * form's messages.
   */
  @Post('organizations/:orgId/gateway-limits')
  @Roles(Role.RootAdmin)
  async setGatewayLimits(
    @Req() req: Request,
    @CurrentUser() user: AuthUser,
    @CsrfToken() csrfToken: string,
    @Param() { orgId }: OrgIdParam,
    @Body() body: PostedGatewayLimitsForm,
    @Res() res: Response,
  ): Promise<void> {
    const outcome = await this.pages.setGatewayLimits(req, { user, csrfToken }, orgId, body);
    if (outcome.status === 303) res.redirect(303, `/admin/organizations/${orgId}#gateway-limits`);
    else res.status(outcome.status).render('admin/organization', outcome.page);
  }

  @Post('organizations/:orgId/rename')
  @Roles(Role.RootAdmin)
  async renameOrganization(
    @CurrentUser() user: AuthUser,
    @Param() { orgId }: OrgIdParam,
    @Body() dto: UpdateOrganizationDto,
    @Res() res: Response,
  ): Promise<void> {
    await this.organizations.update(user, orgId, dto);
    res.redirect(303, `/admin/organizations/${orgId}`);
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
