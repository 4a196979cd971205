import { HttpException, HttpStatus } from '@nestjs/common';

/** A browser page needs a signed-in user: the error filter redirects to the login page. */
export class LoginRequiredException extends HttpException {
  constructor(readonly returnTo: string) {
    super('Sign in required', HttpStatus.UNAUTHORIZED);
  }
}

/** A signed-in user must change their password before doing anything else. */
export class PasswordChangeRequiredException extends HttpException {
  constructor() {
    super('You must change your password before continuing', HttpStatus.FORBIDDEN);
  }
}

/** A same-site relative path to return to after login; anything else (//host, https://…) is dropped. */
export function safeReturnPath(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 2000) return undefined;
  if (!value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return undefined;
  return value;
}
