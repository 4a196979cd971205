import { CanActivate, ExecutionContext, Injectable, UnauthorizedException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { Request } from 'express';

import { ALLOW_PASSWORD_CHANGE_PENDING, HTML_ROUTES, IS_PUBLIC } from 'src/common/decorators/auth.decorators';
import { LoginRequiredException, PasswordChangeRequiredException } from 'src/common/errors';

/**
 * Global guard: every route needs a signed-in user unless it is @Public(). Browser pages
 * (@HtmlRoutes) send anonymous visitors to /login; JSON routes answer 401. A pending forced
 * password change blocks everything but the change-password page and logout.
 */
@Injectable()
export class AuthenticatedGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    const targets = [context.getHandler(), context.getClass()];
    const req = context.switchToHttp().getRequest<Request>();
    req.htmlErrors = this.reflector.getAllAndOverride<boolean>(HTML_ROUTES, targets) ?? false;
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, targets)) return true;
    if (!req.user) {
      if (req.htmlErrors) throw new LoginRequiredException(req.method === 'GET' ? req.originalUrl : '/');
      throw new UnauthorizedException('Sign in required');
    }
    if (
      req.user.mustChangePassword &&
      !this.reflector.getAllAndOverride(ALLOW_PASSWORD_CHANGE_PENDING, targets)
    ) {
      throw new PasswordChangeRequiredException();
    }
    return true;
  }
}
