import { Body, Controller, Get, Post, Query, Render, Res } from '@nestjs/common';
import { Response } from 'express';

import { CsrfToken, CurrentUser, HtmlRoutes, Roles } from 'src/common/decorators/auth.decorators';
import type { StoredCredential } from 'src/connections/connections.types';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { CheckedCredential, OwnCredential } from './own-credential.guard';
import { LaunchPagesBuilder } from './page-builders/launch-pages.builder';
import { asText, OwnConnectionFormBody } from './patient-pages.controller';
import { ProviderLaunchPage } from './view-models/launch-page';

/**
 * Pages after a launch. A provider sees the context of their own launch only: another user's
 * credential, or an unknown one, is a 404. Data is read with the provider's own token, server-side.
 * The page also shows their connections that ended (until they launch again) and the email form.
 */
@Controller('launch')
@HtmlRoutes()
export class LaunchPagesController {
  constructor(private readonly pages: LaunchPagesBuilder) {}

  @Get('provider/:credentialId')
  @Roles(Role.Provider)
  @OwnCredential()
  @Render('launch/provider')
  provider(
    @CurrentUser() user: AuthUser,
    @CsrfToken() csrfToken: string,
    @CheckedCredential() credential: StoredCredential,
    @Query('saved') saved?: string,
  ): Promise<ProviderLaunchPage> {
    return this.pages.providerPage({ user, csrfToken }, credential, { saved: saved === '1' });
  }

  /** The provider's email form: saved, or the page again (400) with the error and what was entered. */
  @Post('provider/:credentialId/notifications')
  @Roles(Role.Provider)
  @OwnCredential()
  async notifications(
    @CurrentUser() user: AuthUser,
    @CsrfToken() csrfToken: string,
    @CheckedCredential() credential: StoredCredential,
    @Body() body: OwnConnectionFormBody,
    @Res() res: Response,
  ): Promise<void> {
    const outcome = await this.pages.saveOwnContact(user, body ?? {});
    if (outcome.ok) return res.redirect(303, `/launch/provider/${credential.id}?saved=1`);
    const page = await this.pages.providerPage({ user, csrfToken }, credential, {
      contactEmail: asText(body?.contactEmail),
      ownConnection: asText(body?.ownConnection),
      error: outcome.error,
      field: outcome.field,
    });
    res.status(400).render('launch/provider', page);
  }
}
