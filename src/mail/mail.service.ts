import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { createTransport, type Transporter } from 'nodemailer';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';

import type { RenderedMail } from './mail-render.service';
import { MailServerCheck, OutgoingMail } from './mail.types';
import { messageIdDomain, smtpOptions } from './smtp-options';

/** How long one `/health` answer about the SMTP server is reused: a probe every few seconds must not log in every time. */
const CHECK_CACHE_MS = 60_000;
const CHECK_TIMEOUT_MS = 5_000;

/** Why a message was not accepted, in words safe to store and log (never the server address or credentials). */
export class MailDeliveryError extends Error {
  constructor(
    message: string,
    /** The SMTP reply code, when the server answered (4xx: try later; 5xx: refused). */
    readonly responseCode?: number,
  ) {
    super(message);
    this.name = 'MailDeliveryError';
  }

  /**
   * Whether the server refused for good (RFC 5321 §4.2.1: 5yz is a permanent negative reply, e.g.
   * 550 mailbox unknown), so retrying cannot help. Authentication replies (530–538) are excluded:
   * they mean our configuration is wrong, and the email goes out once it is fixed.
   */
  get permanent(): boolean {
    const code = this.responseCode;
    return code !== undefined && code >= 500 && code < 600 && !(code >= 530 && code <= 538);
  }
}

/**
 * The SMTP edge: one nodemailer transport from SMTP_URL or SMTP_HOST…, or none (email off).
 * `send` is called only by the outbox worker (never inline in a request); `check` feeds `/health`.
 * Nothing here logs the transport's options: SMTP_URL carries the password.
 */
@Injectable()
export class MailService implements OnModuleDestroy {
  private readonly logger = new Logger(MailService.name);
  private readonly transport: Transporter | null;
  private lastCheck?: { at: number; result: Promise<MailServerCheck> };

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {
    const options = smtpOptions(config.env);
    // logger: false and debug: false: nodemailer would otherwise be able to print the SMTP dialogue (AUTH included).
    this.transport = options ? createTransport({ ...options, logger: false, debug: false }) : null;
  }

  /** Whether email is configured at all (SMTP_URL or SMTP_HOST). */
  get configured(): boolean {
    return this.transport !== null;
  }

  /**
   * The message an outbox entry sends: its `Message-ID` derived from the entry (the same on every
   * attempt), `Auto-Submitted: auto-generated` (RFC 3834: auto-responders stay quiet) and, with
   * `unsubscribeUrl`, RFC 8058 one-click unsubscribe (the URL alone names the recipient and channel).
   */
  message(
    outboxId: string,
    mail: { to: string; subject: string; body: RenderedMail; unsubscribeUrl?: string },
  ): OutgoingMail {
    const unsubscribe: Record<string, string> = mail.unsubscribeUrl
      ? {
          'List-Unsubscribe': `<${mail.unsubscribeUrl}>`,
          'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
        }
      : {};
    return {
      to: mail.to,
      subject: mail.subject,
      text: mail.body.text,
      html: mail.body.html,
      messageId: `<${outboxId}@${messageIdDomain(this.config.publicBaseUrl)}>`,
      headers: { ...unsubscribe, 'Auto-Submitted': 'auto-generated' },
    };
  }

  /** Hands one message to the SMTP server; throws MailDeliveryError when it is not accepted. */
  async send(mail: OutgoingMail): Promise<void> {
    if (!this.transport) throw new MailDeliveryError('email is not configured');
    try {
      await this.transport.sendMail({
        from: this.config.env.MAIL_FROM,
        to: mail.to,
        subject: mail.subject,
        text: mail.text,
        html: mail.html,
        messageId: mail.messageId,
        headers: mail.headers,
      });
    } catch (error) {
      throw describeSmtpError(error);
    }
  }

  /** The SMTP server answers and accepts our login (nodemailer `verify()`), with a timeout; cached for a minute. */
  check(now = Date.now()): Promise<MailServerCheck> {
    if (this.lastCheck && now - this.lastCheck.at < CHECK_CACHE_MS) return this.lastCheck.result;
    const result = this.verify();
    this.lastCheck = { at: now, result };
    return result;
  }

  onModuleDestroy(): void {
    this.transport?.close();
  }

  private async verify(): Promise<MailServerCheck> {
    const checkedAt = new Date().toISOString();
    if (!this.transport) return { ok: false, problem: 'email is not configured', checkedAt };
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.transport.verify(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new MailDeliveryError('the SMTP server did not answer in time')),
            CHECK_TIMEOUT_MS,
          );
        }),
      ]);
      return { ok: true, checkedAt };
    } catch (error) {
      const problem = describeSmtpError(error).message;
      this.logger.warn({ problem }, 'The SMTP server check failed');
      return { ok: false, problem, checkedAt };
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * nodemailer's error as a short, safe sentence: its code and the server's reply code. The raw
 * message is left out: for some failures it quotes the connection target or the server's banner.
 */
function describeSmtpError(error: unknown): MailDeliveryError {
  if (error instanceof MailDeliveryError) return error;
  const e = error as { code?: string; responseCode?: number; command?: string };
  if (typeof e.responseCode === 'number') {
    const what = e.command ? ` to ${e.command.split(' ')[0]}` : '';
    return new MailDeliveryError(`the SMTP server answered ${e.responseCode}${what}`, e.responseCode);
  }
  const known = e.code ? SMTP_ERROR_WORDS[e.code] : undefined;
  return new MailDeliveryError(known ?? `sending failed (${e.code ?? 'unknown error'})`);
}

/** nodemailer's error codes, in words. */
const SMTP_ERROR_WORDS: Record<string, string> = {
  EAUTH: 'the SMTP server refused the login',
  ETIMEDOUT: 'the SMTP server did not answer in time',
  ESOCKET: 'the SMTP server could not be reached',
  ECONNECTION: 'the SMTP server could not be reached',
  EDNS: 'the SMTP server could not be reached',
  ETLS: 'the TLS handshake with the SMTP server failed',
};
