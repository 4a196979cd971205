import { Injectable } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';

import { AuthEvents, SignedInEvent } from 'src/auth/auth.events';
import { Role } from 'src/users/user.types';

import { ATTENTION_STATES, ConnectionState } from 'src/connections/connections.types';
import { ConnectionsReadModel } from 'src/connections/connections.read-model';
import { humanDuration } from './notification-messages';

/**
 * At sign-in: an org admin whose connection needs attention is told at once, with the re-connect
 * link; a root admin gets a count of the organizations that need attention.
 */
@Injectable()
export class LoginNoticesListener {
  constructor(private readonly states: ConnectionsReadModel) {}

  @OnEvent(AuthEvents.SignedIn, { promisify: true, suppressErrors: false })
  async onSignedIn({ user, notices }: SignedInEvent): Promise<void> {
    const now = new Date();
    if (user.role === Role.RootAdmin) {
      const counts = await this.states.counts(now);
      const n = ATTENTION_STATES.reduce((sum, state) => sum + counts[state], 0);
      if (n > 0) {
        notices.push({
          level: 'warning',
          text: `${n} organization${n === 1 ? ' needs' : 's need'} attention: ${counts.expired} expired, ${counts.expiring} expiring, ${counts.error} with errors.`,
          link: { href: '/admin?state=attention', label: 'Show them' },
        });
      }
      return;
    }
    if (user.role !== Role.OrgAdmin || !user.organizationId) return;
    const snapshot = await this.states.snapshot(user.organizationId, now);
    if (!snapshot) return;
    const reconnect = { href: `/connect_epic/${snapshot.organizationId}`, label: 'Re-connect' };
    const { name, noun } = snapshot.server; // "Epic", the name an administrator gave, or "the EHR"
    switch (snapshot.state) {
      case ConnectionState.Expired:
        notices.push({
          level: 'error',
          text: `${noun} connection has expired, please re-connect.`,
          link: reconnect,
        });
        break;
      case ConnectionState.Expiring:
        notices.push({
          level: 'warning',
          text: `${noun} connection expires in ${humanDuration((snapshot.endsAt?.getTime() ?? now.getTime()) - now.getTime())}, please re-connect before then.`,
          link: reconnect,
        });
        break;
      case ConnectionState.Error:
        notices.push({
          level: 'warning',
          text: `Calls to ${name} are failing: ${snapshot.lastError ?? 'unknown error'}`,
          link: { href: `/admin/organizations/${snapshot.organizationId}`, label: 'Details' },
        });
        break;
      case ConnectionState.Connected:
      case ConnectionState.NotConnected:
      case ConnectionState.NotConfigured:
        break;
    }
  }
}
