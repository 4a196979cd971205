import { Body, Controller, Get, Param, Post, Render, Req, Res } from '@nestjs/common';
import { Request, Response } from 'express';

import { ApiKeyParams } from 'src/api-keys/dto/api-key.dto';
import { CsrfToken, CurrentUser, HtmlRoutes, OrgScope, Roles } from 'src/common/decorators/auth.decorators';
import { OrgIdParam } from 'src/organizations/dto/organization.dto';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { ApiKeysPageBuilder, ApiKeysPageView } from './page-builders/api-keys-page.builder';
import { PostedApiKeyForm } from './view-models/api-keys-page';

/**
 * An organization's API keys for the FHIR gateway: the list, the create form (the new key is shown
 * once, on the answer to the form), each active key's Edit form and Revoke. Its org admins and root admins.
 * @see src/api-keys/README.md
 */
@Controller('admin/organizations/:orgId/api-keys')
@HtmlRoutes()
@Roles(Role.RootAdmin, Role.OrgAdmin)
@OrgScope()
export class ApiKeysPageController {
  constructor(private readonly pages: ApiKeysPageBuilder) {}

  @Get()
  @Render('admin/api-keys')
  page(
    @Req() req: Request,
    @CurrentUser() user: AuthUser,
    @CsrfToken() csrfToken: string,
    @Param() { orgId }: OrgIdParam,
  ): Promise<ApiKeysPageView> {
    return this.pages.page(req, { user, csrfToken }, orgId);
  }

  /** Creates a key: 201 with the page showing it once, or 400 with the form's messages. */
  @Post()
  async create(
    @Req() req: Request,
    @CurrentUser() user: AuthUser,
    @CsrfToken() csrfToken: string,
    @Param() { orgId }: OrgIdParam,
    @Body() body: PostedApiKeyForm,
    @Res() res: Response,
  ): Promise<void> {
    const { status, page } = await this.pages.create(req, { user, csrfToken }, orgId, body);
    res.status(status).render('admin/api-keys', page);
  }

  /** Changes an active key: back to the list with what changed (303), or 400 with the form's messages. */
  @Post(':keyId/edit')
  async edit(
    @Req() req: Request,
    @CurrentUser() user: AuthUser,
    @CsrfToken() csrfToken: string,
    @Param() { orgId, keyId }: ApiKeyParams,
    @Body() body: PostedApiKeyForm,
    @Res() res: Response,
  ): Promise<void> {
    const outcome = await this.pages.edit(req, { user, csrfToken }, orgId, keyId, body);
    if (outcome.status === 303) res.redirect(303, `/admin/organizations/${orgId}/api-keys`);
    else res.status(outcome.status).render('admin/api-keys', outcome.page);
  }

  @Post(':keyId/revoke')
  async revoke(
    @Req() req: Request,
    @CurrentUser() user: AuthUser,
    @Param() { orgId, keyId }: ApiKeyParams,
    @Res() res: Response,
  ): Promise<void> {
    await this.pages.revoke(req, user, orgId, keyId);
    res.redirect(303, `/admin/organizations/${orgId}/api-keys`);
  }
}
