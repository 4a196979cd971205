import { Injectable } from '@nestjs/common';
import { Request, Response } from 'express';

import { AuditService } from 'src/audit/audit.service';
import { Role } from 'src/users/user.types';
import { UsersService } from 'src/users/users.service';
import { AuthUser } from 'src/users/user.view';

import { ChangePasswordDto } from './dto/change-password.dto';
import { SESSION_COOKIE } from './http-session.middleware';

@Injectable()
export class AuthService {
  constructor(
    private readonly users: UsersService,
    private readonly audit: AuditService,
  ) {}

  /** Where a user lands after signing in. */
  homeFor(user: AuthUser): string {
    switch (user.role) {
      case Role.RootAdmin:
        return '/admin';
      case Role.OrgAdmin:
        return `/admin/organizations/${user.organizationId}`;
      case Role.Provider:
      case Role.Patient:
        return '/account';
    }
  }

  async recordLogin(user: AuthUser, ip: string | undefined): Promise<void> {
    await this.audit.record({ actor: user, action: 'auth.login', detail: { ip } });
  }

  /** Ends the session server-side (row deleted) and clears the cookie. */
  async logout(req: Request, res: Response): Promise<void> {
    const user = req.user;
    await new Promise<void>((resolve, reject) =>
      req.logout((err) => (err ? reject(err as Error) : resolve())),
    );
    await new Promise<void>((resolve) => req.session.destroy(() => resolve()));
    res.clearCookie(SESSION_COOKIE);
    if (user) await this.audit.record({ actor: user, action: 'auth.logout' });
  }

  /**
   * Returns a message for the form when the change is refused. On success every other session of
   * the user ends and this one gets a new id, so a stolen session does not survive the change.
   */
  async changePassword(req: Request, user: AuthUser, dto: ChangePasswordDto): Promise<string | undefined> {
    if (dto.newPassword !== dto.confirmPassword) return 'The new passwords do not match.';
    if (!(await this.users.verifyPassword(user.id, dto.currentPassword))) {
      await this.audit.record({ actor: user, action: 'auth.password-changed', outcome: 'failure' });
      return 'The current password is wrong.';
    }
    if (dto.newPassword === dto.currentPassword) return 'Choose a password different from the current one.';
    await this.users.setPassword(user.id, dto.newPassword);
    await this.users.endOtherSessions(user.id, req.session.id);
    const updated = { ...user, mustChangePassword: false };
    await new Promise<void>((resolve, reject) =>
      req.login(updated, (err) => (err ? reject(err as Error) : resolve())),
    );
    await this.audit.record({ actor: user, action: 'auth.password-changed' });
    return undefined;
  }
}
