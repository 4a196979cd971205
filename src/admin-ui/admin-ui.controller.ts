import { Body, Controller, Get, Param, Post, Query, Render, Res, UseInterceptors } from '@nestjs/common';
import { Response } from 'express';

import { AuditService } from 'src/audit/audit.service';
import { ATTENTION_STATES, CONNECTION_STATES } from 'src/connections/connections.read-model';
import { ConnectionsReadModel } from 'src/connections/connections.read-model';
import { NotificationsService } from 'src/connection-health/notifications.service';
import { CsrfToken, CurrentUser, HtmlRoutes, OrgScope, Roles } from 'src/common/decorators/auth.decorators';
import {
  CreateOrgAdminDto,
  CreateOrganizationDto,
  OrgIdParam,
  UpdateOrganizationDto,
} from 'src/organizations/dto/organization.dto';
import { OrganizationsService } from 'src/organizations/organizations.service';
import { serverLabel } from 'src/organizations/organization.types';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { AdminPageInterceptor } from './admin-page.interceptor';
import { CONSOLE_SORTS, ConsoleQueryDto } from './dto/console-query.dto';
import { formatUtc, stateBadge, toConnectionRow } from './view-models/connection-row';

const PAGE_SIZE = 50;

/** A console URL keeping the filter, search and sort (empty values left out). */
function consoleLink(query: Partial<ConsoleQueryDto>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== '' && !(key === 'page' && value === 1)) {
      params.set(key, String(value));
    }
  }
  const text = params.toString();
  return text ? `/admin?${text}` : '/admin';
}

/** The admin consoles (server-rendered). */
@Controller('admin')
@HtmlRoutes()
@Roles(Role.RootAdmin, Role.OrgAdmin)
@UseInterceptors(AdminPageInterceptor)
export class AdminUiController {
  constructor(
    private readonly organizations: OrganizationsService,
    private readonly audit: AuditService,
    private readonly states: ConnectionsReadModel,
    private readonly notifications: NotificationsService,
  ) {}

  @Get()
  @Roles(Role.RootAdmin)
  @Render('admin/organizations')
  async organizationsPage(
    @CurrentUser() user: AuthUser,
    @CsrfToken() csrfToken: string,
    @Query() query: ConsoleQueryDto,
  ): Promise<object> {
    const now = new Date();
    const page = query.page ?? 1;
    // The counts give the page's total too (without a search): one full pass, not two.
    const counts = await this.states.counts(now);
    const { items, total } = await this.states.list(
      {
        state: query.state,
        search: query.q,
        sort: query.sort,
        limit: PAGE_SIZE,
        offset: (page - 1) * PAGE_SIZE,
      },
      now,
      counts,
    );
    const link = (changes: Partial<ConsoleQueryDto>) =>
      consoleLink({ ...query, page: undefined, ...changes });
    return {
      title: 'Organizations',
      user,
      csrfToken,
      rows: items.map(toConnectionRow),
      total,
      query,
      summary: CONNECTION_STATES.map((state) => ({
        state,
        badge: stateBadge(state),
        count: counts[state],
        href: link({ state }),
        current: query.state === state,
      })),
      attention: {
        count: ATTENTION_STATES.reduce((n, s) => n + counts[s], 0),
        href: link({ state: 'attention' }),
      },
      allHref: link({ state: undefined }),
      sorts: CONSOLE_SORTS.map((sort) => ({
        sort,
        href: link({ sort }),
        current: (query.sort ?? 'name') === sort,
      })),
      previous: page > 1 ? consoleLink({ ...query, page: page - 1 }) : null,
      next: page * PAGE_SIZE < total ? consoleLink({ ...query, page: page + 1 }) : null,
      pageInfo:
        total === 0 ? '' : `${(page - 1) * PAGE_SIZE + 1}–${Math.min(page * PAGE_SIZE, total)} of ${total}`,
    };
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
    const [admins, events, snapshot, notifications] = await Promise.all([
      this.organizations.listAdmins(orgId),
      this.audit.list({ organizationId: orgId, limit: 20 }),
      this.states.snapshot(orgId),
      this.notifications.list(user, { organizationId: orgId, limit: 5 }),
    ]);
    const server = serverLabel(org);
    return {
      title: org.name,
      user,
      csrfToken,
      org,
      server,
      serverSource: !org.fhirBaseUrl
        ? 'Epic by default: no base URL is registered yet'
        : server.source === 'admin'
          ? 'as named by an administrator'
          : server.isEpic
            ? 'recognised from the base URL'
            : 'not recognised as Epic; an administrator can name it on the registration page',
      snapshot,
      badge: snapshot ? stateBadge(snapshot.state) : null,
      tokenExpiry: formatUtc(snapshot?.facts.credential?.expiresAt ?? null),
      renewal: !snapshot?.facts.credential
        ? '—'
        : snapshot.endsAt
          ? `ends ${formatUtc(snapshot.endsAt)}`
          : 'refreshes automatically',
      lastSync: formatUtc(snapshot?.lastSync ?? null),
      admins,
      events,
      notifications,
      lastError: snapshot?.lastError ?? null,
      lastErrorSince: formatUtc(snapshot?.lastErrorAt ?? null),
      isRoot: user.role === Role.RootAdmin,
      flash: connected === '1' && snapshot?.facts.credential ? `Connected to ${server.name}.` : undefined,
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
