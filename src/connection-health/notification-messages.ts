import { EPIC_LABEL, ServerLabel } from 'src/organizations/organization.types';

import { ConnectionState } from 'src/connections/connections.types';
import type { ConnectionSnapshot } from 'src/connections/connections.read-model';
import type { NotificationKind } from './entities/notification.entity';

export interface NotificationContent {
  kind: NotificationKind;
  title: string;
  message: string;
  link: string;
  /** One line for chat webhooks (Slack-compatible `text`). */
  text: string;
}

/** "25 minutes", "3 hours", "2 days": rounded down, never "0 minutes". */
export function humanDuration(ms: number): string {
  const minutes = Math.max(1, Math.floor(ms / 60_000));
  if (minutes < 120) return `${minutes} minute${minutes === 1 ? '' : 's'}`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} hours`;
  return `${Math.floor(hours / 24)} days`;
}

/** Links an admin acts on: re-connect (confirmation page) and the organization page. */
export function connectionLinks(
  baseUrl: string,
  organizationId: string,
): { reconnect: string; organization: string } {
  return {
    reconnect: `${baseUrl}/connect_epic/${organizationId}`,
    organization: `${baseUrl}/admin/organizations/${organizationId}`,
  };
}

/**
 * What to tell an organization's admins when its connection moves to `snapshot.state`, or null
 * when the move is not worth a notice (e.g. to not_connected after a disconnect, or connected the
 * first time it is seen). Pure: the clock and the base URL are parameters.
 */
/** Slack's mrkdwn control characters; an organization named "<!channel>" must not ping anyone. */
const chat = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function describeTransition(
  snapshot: Pick<
    ConnectionSnapshot,
    'organizationId' | 'organizationName' | 'state' | 'endsAt' | 'lastError'
  > & {
    /** What to call the organization's server ("Epic", the admin's name, "the EHR"); Epic if absent. */
    server?: Pick<ServerLabel, 'name' | 'noun'>;
  },
  previous: ConnectionState | null,
  now: Date,
  baseUrl: string,
): NotificationContent | null {
  const org = snapshot.organizationName;
  const orgText = chat(org);
  // "Epic connection", "Cerner Millennium connection", "EHR connection"; an admin-given name is escaped for chat too.
  const { name, noun } = snapshot.server ?? EPIC_LABEL;
  const nounText = chat(noun);
  const links = connectionLinks(baseUrl, snapshot.organizationId);
  const reason = snapshot.lastError ? ` Reason: ${snapshot.lastError}` : '';
  switch (snapshot.state) {
    case ConnectionState.Expiring: {
      const left = snapshot.endsAt ? humanDuration(snapshot.endsAt.getTime() - now.getTime()) : 'soon';
      const at = snapshot.endsAt ? ` (${snapshot.endsAt.toISOString().replace(/\.\d{3}Z$/, 'Z')})` : '';
      const message = `The ${noun} connection of ${org} expires in ${left}${at} and cannot be renewed without signing in again. Re-connect before then.`;
      return {
        kind: 'attention',
        title: `${noun} connection expires in ${left}: ${org}`,
        message,
        link: links.reconnect,
        text: `⚠ ${orgText}: ${nounText} connection expires in ${left}. Re-connect: ${links.reconnect}`,
      };
    }
    case ConnectionState.Expired:
      return {
        kind: 'attention',
        title: `${noun} connection expired: ${org}`,
        message: `${noun} connection has expired, please re-connect.${reason}`,
        link: links.reconnect,
        text: `❌ ${orgText}: ${nounText} connection has expired, please re-connect: ${links.reconnect}`,
      };
    case ConnectionState.Error:
      return {
        kind: 'attention',
        title: `${noun} connection error: ${org}`,
        message: `Calls to ${name} are failing; the stored tokens were kept and the connection will recover by itself when ${name} answers again.${reason}`,
        link: links.organization,
        text: `⚠ ${orgText}: ${nounText} connection error.${chat(reason)} ${links.organization}`,
      };
    case ConnectionState.Connected:
      if (
        previous === null ||
        previous === ConnectionState.NotConfigured ||
        previous === ConnectionState.NotConnected
      ) {
        return null;
      }
      return {
        kind: 'resolved',
        title: `${noun} connection restored: ${org}`,
        message: `The ${noun} connection of ${org} works again.`,
        link: links.organization,
        text: `✅ ${orgText}: ${nounText} connection works again. ${links.organization}`,
      };
    case ConnectionState.NotConfigured:
    case ConnectionState.NotConnected:
      return null;
  }
}
