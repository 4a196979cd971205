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
      error: throttled
        ? `Too many sign-in attempts. Try again in ${waitInWords(Number(res.getHeader('Retry-After')))}.`
        : exception.message,
      email: typeof body?.email === 'string' ? body.email : '',
      next: safeReturnPath(body?.next),
    });
  }
}

/** The throttler's Retry-After (seconds), as the page says it: "45 seconds", "2 minutes". */
function waitInWords(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds <= 0) return 'a little while';
  if (seconds < 90) return `${Math.ceil(seconds)} seconds`;
  return `${Math.ceil(seconds / 60)} minutes`;
}
