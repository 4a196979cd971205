import type { SMTPTransportOptions } from 'nodemailer/lib/smtp-transport';

import type { EnvSchema } from 'src/config/env.schema';

/** Timeouts short enough that a claimed outbox entry (5-minute lease) is settled long before its lease ends. */
const TIMEOUTS = { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 };

/**
 * nodemailer's SMTP options from the environment, or null when email is not configured (neither
 * SMTP_URL nor SMTP_HOST). SMTP_URL is handed to nodemailer with `smtps://` meaning TLS from the
 * first byte, and `smtp://` upgrading with STARTTLS, required (nodemailer alone would upgrade only
 * when the server offers it, so a man in the middle could strip the offer and read the password)
 * unless SMTP_SECURE=none (a relay on the same host). With SMTP_HOST, SMTP_SECURE is `tls` (port 465
 * by default), `starttls` (587; the upgrade is required, so a server that stops offering it fails
 * instead of receiving the password in the clear) or `none`. The boot check refuses an SMTP_SECURE
 * that contradicts SMTP_URL's scheme.
 */
export function smtpOptions(
  env: Pick<
    EnvSchema,
    'SMTP_URL' | 'SMTP_HOST' | 'SMTP_PORT' | 'SMTP_USER' | 'SMTP_PASSWORD' | 'SMTP_SECURE'
  >,
): SMTPTransportOptions | null {
  if (env.SMTP_URL) {
    if (/^smtps:/i.test(env.SMTP_URL)) return { url: env.SMTP_URL, ...TIMEOUTS };
    const plain = env.SMTP_SECURE === 'none';
    return { url: env.SMTP_URL, requireTLS: !plain, ignoreTLS: plain, ...TIMEOUTS };
  }
  if (!env.SMTP_HOST) return null;
  const secure = env.SMTP_SECURE ?? (env.SMTP_PORT === 465 ? 'tls' : 'starttls');
  return {
    host: env.SMTP_HOST,
    port: env.SMTP_PORT ?? (secure === 'tls' ? 465 : 587),
    secure: secure === 'tls',
    requireTLS: secure === 'starttls',
    ignoreTLS: secure === 'none',
    ...(env.SMTP_USER ? { auth: { user: env.SMTP_USER, pass: env.SMTP_PASSWORD ?? '' } } : {}),
    ...TIMEOUTS,
  };
}

/** The host of the public URL: the right-hand side of our Message-IDs (RFC 5322 §3.6.4). */
export function messageIdDomain(publicBaseUrl: string): string {
  return new URL(publicBaseUrl).hostname || 'epic-connect.invalid';
}
