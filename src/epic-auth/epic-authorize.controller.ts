import { Controller, Get, Query, Req, Res, UseFilters } from '@nestjs/common';
import { IsUUID } from 'class-validator';
import { Request, Response } from 'express';

import { CurrentUser, HtmlRoutes, OrgScope, Public, Roles } from 'src/common/decorators/auth.decorators';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { AuthorizationService } from './authorization.service';
import { EpicAuthBrowserFilter } from './filters/epic-auth-browser.filter';

class OrgQuery {
  @IsUUID('all', { message: 'org must be an organization id' })
  org!: string;
}

/** Browser entry points of the organization connection (seed 001: /fhir/epic-authorize). */
@Controller('fhir')
@HtmlRoutes()
@UseFilters(EpicAuthBrowserFilter)
export class EpicAuthorizeController {
  constructor(private readonly authorization: AuthorizationService) {}

  /** Sends an admin to Epic to authorize the organization's connection. */
  @Get('epic-authorize')
  @Roles(Role.RootAdmin, Role.OrgAdmin)
  @OrgScope({ query: 'org' })
  async authorize(
    @CurrentUser() user: AuthUser,
    @Query() { org }: OrgQuery,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    const url = await this.authorization.startOrganizationAuthorization(user, req.session.id, org);
    res.redirect(303, url.toString());
  }

  /**
   * Epic redirects the browser here with `code` and `state` (or `error`). Public, because the
   * check is the pending authorization bound to this session, not the route's guards; every
   * failure is a page, never JSON.
   */
  @Public()
  @Get('epic-callback')
  async callback(@Req() req: Request, @Res() res: Response): Promise<void> {
    const orgId = await this.authorization.completeAuthorization(req.session.id, req.query);
    res.redirect(303, `/admin/organizations/${orgId}?connected=1`);
  }
}
