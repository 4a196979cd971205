import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { Request } from 'express';
import { Strategy } from 'passport-local';

import { AuditService } from 'src/audit/audit.service';
import { UsersService } from 'src/users/users.service';
import { AuthUser } from 'src/users/user.view';

import { LoginFailedException } from './login-failed.exception';

const MESSAGES = {
  invalid: 'Invalid email or password.',
  // Same words for a locked account whatever the password, so a lock reveals nothing more.
  locked: 'Invalid email or password, or the account is temporarily locked after too many attempts.',
  disabled: 'This account is disabled. Contact your administrator.',
} as const;

@Injectable()
export class LocalStrategy extends PassportStrategy(Strategy) {
  constructor(
    private readonly users: UsersService,
    private readonly audit: AuditService,
  ) {
    super({ usernameField: 'email', passwordField: 'password', passReqToCallback: true });
  }

  async validate(req: Request, email: string, password: string): Promise<AuthUser> {
    const result = await this.users.checkCredentials(email, password);
    if (result.ok) return result.user;
    if (result.userId) {
      await this.audit.record({
        actor: { id: result.userId, email },
        action: 'auth.login',
        outcome: 'failure',
        detail: { reason: result.reason, ip: req.ip },
      });
    }
    throw new LoginFailedException(MESSAGES[result.reason]);
  }
}
