import { Body, Controller, Get, Post, Query, Render, Req, Res } from '@nestjs/common';
import { Request, Response } from 'express';

import { CsrfToken, CurrentUser, HtmlRoutes, OrgScope, Roles } from 'src/common/decorators/auth.decorators';
import { OrgRefDto } from 'src/organizations/dto/org-ref.dto';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { RegistrationPageQueryDto } from './dto/registration-page-query.dto';
import { RegistrationPageBuilder, RegistrationPageView } from './page-builders/registration-page.builder';
import { PostedRegistrationForm } from './view-models/registration-page';

/**
 * The registration page of an organization's Epic or other SMART server: the client
 * registration form (with the name the pages call the server), what to register at the server,
 * the connection status panel, Test Connection, Connect, Reconnect and Disconnect. Root admins
 * choose the organization with `?org=`; org admins land on their own (RegistrationOrgRedirectMiddleware
 * completes an address without `?org=`).
 */
@Controller('admin/epic/registration')
@HtmlRoutes()
@Roles(Role.RootAdmin, Role.OrgAdmin)
@OrgScope({ query: 'org' })
export class EpicRegistrationController {
  constructor(private readonly registration: RegistrationPageBuilder) {}

  @Get()
  @Render('admin/epic-registration')
  page(
    @Req() req: Request,
    @CurrentUser() user: AuthUser,
    @CsrfToken() csrfToken: string,
    @Query() { org, saved }: RegistrationPageQueryDto,
  ): Promise<RegistrationPageView> {
    return this.registration.page(req, { user, csrfToken }, org, { saved: saved === '1' });
  }

  /** Saves the registration; invalid input re-renders the form (400) with messages beside the fields. */
  @Post()
  async save(
    @Req() req: Request,
    @CurrentUser() user: AuthUser,
    @CsrfToken() csrfToken: string,
    @Query() { org }: OrgRefDto,
    @Body() body: PostedRegistrationForm,
    @Res() res: Response,
  ): Promise<void> {
    const outcome = await this.registration.save(req, { user, csrfToken }, org, body);
    if (outcome.saved) res.redirect(303, outcome.redirect);
    else res.status(400).render('admin/epic-registration', outcome.page);
  }
}
