import { Controller, Get, Render } from '@nestjs/common';

import { CsrfToken, CurrentUser, HtmlRoutes, Roles } from 'src/common/decorators/auth.decorators';
import type { StoredCredential } from 'src/connections/connections.types';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { CheckedCredential, OwnCredential } from './own-credential.guard';
import { LaunchPagesBuilder } from './page-builders/launch-pages.builder';
import { ProviderLaunchPage } from './view-models/launch-page';

/**
 * Pages after a launch. A provider sees the context of their own launch only: another user's
 * credential, or an unknown one, is a 404. Data is read with the provider's own token, server-side.
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
  ): Promise<ProviderLaunchPage> {
    return this.pages.providerPage({ user, csrfToken }, credential);
  }
}
