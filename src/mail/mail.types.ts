/**
 * What people can receive by email, each chosen and unsubscribed separately.
 * `admin-connections`: the connection changes of the organizations an admin looks after (org admin:
 * their own; root admin: all), chosen on the account page. `own-connection`: a provider's or
 * patient's own connection ended (`immediate` or `off`), chosen on their own page.
 */
export const MAIL_CHANNELS = ['admin-connections', 'own-connection'] as const;
export type MailChannel = (typeof MAIL_CHANNELS)[number];

/** `immediate`: one message per change (roots: changes of a short window folded); `digest`: once a day. */
export const MAIL_MODES = ['immediate', 'digest', 'off'] as const;
export type MailMode = (typeof MAIL_MODES)[number];

export const isMailChannel = (value: unknown): value is MailChannel =>
  (MAIL_CHANNELS as readonly unknown[]).includes(value);
export const isMailMode = (value: unknown): value is MailMode =>
  (MAIL_MODES as readonly unknown[]).includes(value);

/** One message ready for SMTP: rendered, addressed, with its stable Message-ID. */
export interface OutgoingMail {
  to: string;
  subject: string;
  text: string;
  html: string;
  /** `<id@host>`: derived from the outbox row, the same on every attempt, so a duplicate is recognisable. */
  messageId: string;
  headers: Record<string, string>;
}

/** Whether the SMTP server takes mail (the `/health` `mail` indicator). */
export interface MailServerCheck {
  ok: boolean;
  /** Why not, in words that never contain the address's credentials. */
  problem?: string;
  checkedAt: string;
}
