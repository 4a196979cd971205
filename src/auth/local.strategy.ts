import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { Request } from 'express';
import { Strategy } from 'passport-local';

import { AuditService } from 'src/audit/audit.service';
import { UsersService } from 'src/users/users.service';
import { AuthUser } from 'src/users/user.view';

import { LoginFailedException } from './login-failed.exception';

/**
 * What a failed sign-in says. A known and an unknown email get the same words at the same attempt
 * (failures are counted per email, account or not), so neither the lock nor its absence tells
 * whether an account exists; only the right password reveals a disabled account.
 */
const MESSAGES = {
  invalid: 'Invalid email or password.',
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
    const result = await this.users.checkCredentials(email, password, req.ip);
    if (result.ok) return result.user;
    // Recorded for unknown emails too (without the email, which may be a mistyped password), so
    // both cost the same work.
    await this.audit.record({
      actor: result.userId ? { id: result.userId, email } : null,
      action: 'auth.login',
      outcome: 'failure',
      detail: { reason: result.reason, ip: req.ip, ...(result.userId ? {} : { account: 'unknown' }) },
    });
    throw new LoginFailedException(MESSAGES[result.reason]);
  }
}
