import { ConnectionState } from 'src/connections/connections.types';
import type { MailMode } from 'src/mail/mail.types';

/** How one recipient gets one notification: alone at once, folded with a short window's, or in the daily digest. */
export type DeliveryMode = 'immediate' | 'burst' | 'digest';

/** The first `hour`:00 UTC strictly after `from`: when the daily digest goes out. */
export function nextDigestAt(from: Date, hour: number): Date {
  const at = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), from.getUTCDate(), hour));
  if (at.getTime() <= from.getTime()) at.setUTCDate(at.getUTCDate() + 1);
  return at;
}

/**
 * How and when a recipient gets a notification created at `createdAt`, or null for none (`off`).
 * Org admins' `immediate` is one message per change. Root admins hear of every organization, so
 * their `immediate` waits `burstWindowSeconds` and folds whatever else changed meanwhile into the
 * same message: 500 organizations expiring in one scheduled check make one email, not 500.
 */
export function planDelivery(
  recipient: { root: boolean; mode: MailMode },
  createdAt: Date,
  options: { burstWindowSeconds: number; digestHourUtc: number },
): { mode: DeliveryMode; dueAt: Date } | null {
  switch (recipient.mode) {
    case 'off':
      return null;
    case 'digest':
      return { mode: 'digest', dueAt: nextDigestAt(createdAt, options.digestHourUtc) };
    case 'immediate':
      return recipient.root
        ? { mode: 'burst', dueAt: new Date(createdAt.getTime() + options.burstWindowSeconds * 1000) }
        : { mode: 'immediate', dueAt: createdAt };
  }
}

/** Words for a state in a subject or a list. */
export const STATE_WORDS: Record<ConnectionState, string> = {
  [ConnectionState.Expiring]: 'expiring',
  [ConnectionState.Expired]: 'expired',
  [ConnectionState.Error]: 'failing',
  [ConnectionState.Connected]: 'restored',
  [ConnectionState.NotConnected]: 'not connected',
  [ConnectionState.NotConfigured]: 'not configured',
};

/**
 * A digest's subject: the states it reports, most urgent first, e.g.
 * "Connection changes: 3 expired, 497 expiring" (the product name is in the sender and the body).
 */
export function digestSubject(states: ConnectionState[], daily: boolean): string {
  const order = [
    ConnectionState.Expired,
    ConnectionState.Error,
    ConnectionState.Expiring,
    ConnectionState.Connected,
    ConnectionState.NotConnected,
    ConnectionState.NotConfigured,
  ];
  const counts = new Map<ConnectionState, number>();
  for (const state of states) counts.set(state, (counts.get(state) ?? 0) + 1);
  const parts = order.filter((s) => counts.has(s)).map((s) => `${counts.get(s)} ${STATE_WORDS[s]}`);
  return `${daily ? 'Daily digest' : 'Connection changes'}: ${parts.join(', ')}`;
}
