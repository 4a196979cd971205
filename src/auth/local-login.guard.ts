import { ExecutionContext, Injectable } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import { Request } from 'express';

import { LoginFailedException } from './login-failed.exception';

/** Checks the login form and starts the session; passport 0.7 regenerates the session id here. */
@Injectable()
export class LocalLoginGuard extends AuthGuard('local') {
  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<Request>();
    const body = req.body as Record<string, unknown> | undefined;
    if (
      typeof body?.email !== 'string' ||
      typeof body.password !== 'string' ||
      !body.email ||
      !body.password
    ) {
      throw new LoginFailedException('Enter your email and password.');
    }
    await super.canActivate(context);
    await super.logIn(req);
    return true;
  }

  override handleRequest<T>(err: unknown, user: T): T {
    if (err instanceof Error) throw err;
    if (err) throw new Error('Sign-in failed');
    if (!user) throw new LoginFailedException('Invalid email or password.');
    return user;
  }
}
