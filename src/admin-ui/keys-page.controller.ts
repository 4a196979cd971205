import { Body, Controller, Get, Post, Render, Req, Res, UseInterceptors } from '@nestjs/common';
import { Request, Response } from 'express';

import { CsrfToken, CurrentUser, HtmlRoutes, Roles } from 'src/common/decorators/auth.decorators';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { AdminPageInterceptor } from './admin-page.interceptor';
import { RotateKeysDto } from './dto/rotate-keys.dto';
import { KeysPageBuilder, KeysPageView } from './page-builders/keys-page.builder';

/**
 * The root admin's Signing keys page: one section per key set (sandbox, production), each with
 * the JWK Set URL to register at Epic, the service's own private_key_jwt keys of that set with
 * their states and next automatic steps, and its own "Start rotation".
 * @see src/client-keys/README.md
 */
@Controller('admin/keys')
@HtmlRoutes()
@Roles(Role.RootAdmin)
@UseInterceptors(AdminPageInterceptor)
export class KeysPageController {
  constructor(private readonly pages: KeysPageBuilder) {}

  @Get()
  @Render('admin/keys')
  page(@CurrentUser() user: AuthUser, @CsrfToken() csrfToken: string): Promise<KeysPageView> {
    return this.pages.page({ user, csrfToken });
  }

  /** Starts a rotation of the posted `environment`'s key set only; the other set is not touched. */
  @Post('rotate')
  async rotate(
    @Req() req: Request,
    @CurrentUser() user: AuthUser,
    @Body() { environment }: RotateKeysDto,
    @Res() res: Response,
  ): Promise<void> {
    await this.pages.startRotation(req, user, environment);
    res.redirect(303, '/admin/keys');
  }
}
