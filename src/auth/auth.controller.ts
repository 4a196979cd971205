import {
  Body,
  Controller,
  Get,
  HttpCode,
  Post,
  Query,
  Render,
  Req,
  Res,
  UseFilters,
  UseGuards,
} from '@nestjs/common';
import { ThrottlerGuard } from '@nestjs/throttler';
import { Request, Response } from 'express';

import {
  AllowPasswordChangePending,
  CsrfToken,
  CurrentUser,
  HtmlRoutes,
  Public,
  Roles,
} from 'src/common/decorators/auth.decorators';
import { addFlash, saveSession } from 'src/common/flash';
import { safeReturnPath } from 'src/common/errors';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { AuthService } from './auth.service';
import { ChangePasswordDto } from './dto/change-password.dto';
import { UpdateMailPreferencesDto } from './dto/update-mail-preferences.dto';
import { LocalLoginGuard } from './local-login.guard';
import { LoginPageFilter } from './login-page.filter';

@Controller()
@HtmlRoutes()
export class AuthController {
  constructor(private readonly auth: AuthService) {}

  @Get()
  home(@CurrentUser() user: AuthUser, @Res() res: Response): void {
    res.redirect(303, this.auth.homeFor(user));
  }

  @Public()
  @Get('login')
  @Render('auth/login')
  loginPage(@CsrfToken() csrfToken: string, @Query('next') next?: string): object {
    return { title: 'Sign in', csrfToken, next: safeReturnPath(next) };
  }

  @Public()
  @Post('login')
  @HttpCode(303)
  @UseGuards(ThrottlerGuard, LocalLoginGuard)
  @UseFilters(LoginPageFilter)
  async login(@Req() req: Request, @Res() res: Response): Promise<void> {
    const user = req.user as AuthUser;
    await this.auth.recordLogin(user, req.ip);
    addFlash(req.session, ...(await this.auth.signInNotices(user)));
    // express-session saves after the response starts: a quick browser could load the next page first.
    await saveSession(req.session);
    const next = safeReturnPath((req.body as Record<string, unknown>).next);
    res.redirect(303, user.mustChangePassword ? '/account/password' : (next ?? this.auth.homeFor(user)));
  }

  @Public()
  @Post('logout')
  async logout(@Req() req: Request, @Res() res: Response): Promise<void> {
    await this.auth.logout(req, res);
    res.redirect(303, '/login');
  }

  @Get('account')
  @Render('auth/account')
  async account(
    @CurrentUser() user: AuthUser,
    @CsrfToken() csrfToken: string,
    @Query('saved') saved?: string,
  ): Promise<object> {
    return {
      title: 'Your account',
      user,
      csrfToken,
      email: await this.auth.mailSettings(user),
      saved: saved === '1',
    };
  }

  /** The admin's email choices (CSRF-checked like every form; admins only: others get no such email). */
  @Post('account/notifications')
  @Roles(Role.RootAdmin, Role.OrgAdmin)
  async updateNotifications(
    @CurrentUser() user: AuthUser,
    @Body() dto: UpdateMailPreferencesDto,
    @Res() res: Response,
  ): Promise<void> {
    await this.auth.updateMailSettings(user, dto);
    res.redirect(303, '/account?saved=1');
  }

  @AllowPasswordChangePending()
  @Get('account/password')
  @Render('auth/change-password')
  changePasswordPage(@CurrentUser() user: AuthUser, @CsrfToken() csrfToken: string): object {
    return { title: 'Change password', user, csrfToken, forced: user.mustChangePassword };
  }

  @AllowPasswordChangePending()
  @Post('account/password')
  @UseGuards(ThrottlerGuard) // the current-password check must not become a guessing oracle
  async changePassword(
    @CurrentUser() user: AuthUser,
    @Body() dto: ChangePasswordDto,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    const error = await this.auth.changePassword(req, user, dto);
    if (error) {
      res.status(400).render('auth/change-password', {
        title: 'Change password',
        user,
        csrfToken: req.issueCsrfToken(),
        forced: user.mustChangePassword,
        error,
      });
      return;
    }
    res.redirect(303, this.auth.homeFor({ ...user, mustChangePassword: false }));
  }
}
