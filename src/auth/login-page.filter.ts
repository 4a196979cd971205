import { ArgumentsHost, Catch, ExceptionFilter, HttpStatus } from '@nestjs/common';
import { ThrottlerException } from '@nestjs/throttler';
import { Request, Response } from 'express';

import { safeReturnPath } from 'src/common/errors';

import { LoginFailedException } from './login-failed.exception';

/** Failed or throttled logins show the login form again with the reason, never a JSON body. */
@Catch(LoginFailedException, ThrottlerException)
export class LoginPageFilter implements ExceptionFilter {
  catch(exception: LoginFailedException | ThrottlerException, host: ArgumentsHost): void {
    const req = host.switchToHttp().getRequest<Request>();
    const res = host.switchToHttp().getResponse<Response>();
    const throttled = exception instanceof ThrottlerException;
    const body = req.body as Record<string, unknown> | undefined;
    res.status(throttled ? HttpStatus.TOO_MANY_REQUESTS : HttpStatus.UNAUTHORIZED).render('auth/login', {
      title: 'Sign in',
      csrfToken: req.issueCsrfToken(),
      error: throttled ? 'Too many sign-in attempts. Wait a minute and try again.' : exception.message,
      email: typeof body?.email === 'string' ? body.email : '',
      next: safeReturnPath(body?.next),
    });
  }
}
