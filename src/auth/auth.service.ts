import { Injectable, Logger } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { Request, Response } from 'express';

import { AuditService } from 'src/audit/audit.service';
import { FlashMessage } from 'src/common/flash';
import { MailPreferencesService } from 'src/mail/mail-preferences.service';
import { MailService } from 'src/mail/mail.service';
import type { MailMode } from 'src/mail/mail.types';
import { Role } from 'src/users/user.types';
import { UsersService } from 'src/users/users.service';
import { AuthUser } from 'src/users/user.view';

import { AuthEvents, SignedInEvent } from './auth.events';
import { ChangePasswordDto } from './dto/change-password.dto';
import { UpdateMailPreferencesDto } from './dto/update-mail-preferences.dto';
import { SESSION_COOKIE } from './http-session.middleware';

/** The account page's email section. */
export interface MailSettingsView {
  /** Whether this server sends email at all (SMTP configured). */
  configured: boolean;
  root: boolean;
  channels: {
    name: string;
    label: string;
    options: { value: MailMode; label: string; selected: boolean }[];
  }[];
}

const MODE_LABELS: Record<MailMode, (root: boolean) => string> = {
  immediate: (root) =>
    root ? 'Email me as it happens (changes close together come as one message)' : 'Email me as it happens',
  digest: () => 'Once a day, in a digest',
  off: () => 'No email',
};

@Injectable()
export class AuthService {
  private readonly logger = new Logger(AuthService.name);

  constructor(
    private readonly users: UsersService,
    private readonly audit: AuditService,
    private readonly events: EventEmitter2,
    private readonly mail: MailService,
    private readonly mailPreferences: MailPreferencesService,
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

  /**
   * The email choices the account page shows: admins only (they are the ones emailed about
   * connections); null for other roles.
   */
  async mailSettings(user: AuthUser): Promise<MailSettingsView | null> {
    if (user.role !== Role.RootAdmin && user.role !== Role.OrgAdmin) return null;
    const mode = await this.mailPreferences.modeOf(user.id, 'admin-connections');
    return {
      configured: this.mail.configured,
      root: user.role === Role.RootAdmin,
      channels: [
        {
          name: 'admin-connections',
          label:
            user.role === Role.RootAdmin
              ? 'Connection changes of every organization'
              : 'Connection changes of your organization',
          options: (['immediate', 'digest', 'off'] as const).map((value) => ({
            value,
            label: MODE_LABELS[value](user.role === Role.RootAdmin),
            selected: value === mode,
          })),
        },
      ],
    };
  }

  async updateMailSettings(user: AuthUser, dto: UpdateMailPreferencesDto): Promise<void> {
    const mode = dto['admin-connections'];
    await this.mailPreferences.set(user.id, 'admin-connections', mode);
    await this.audit.record({
      actor: user,
      action: 'auth.mail-preferences-changed',
      detail: { channel: 'admin-connections', mode },
    });
  }

  async recordLogin(user: AuthUser, ip: string | undefined): Promise<void> {
    await this.audit.record({ actor: user, action: 'auth.login', detail: { ip } });
  }

  /** What to show a user first after signing in (other modules contribute; a failing one is skipped). */
  async signInNotices(user: AuthUser): Promise<FlashMessage[]> {
    const event: SignedInEvent = { user, notices: [] };
    try {
      await this.events.emitAsync(AuthEvents.SignedIn, event);
    } catch (error) {
      this.logger.warn({ err: error, userId: user.id }, 'A sign-in notice could not be prepared');
    }
    return event.notices;
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
