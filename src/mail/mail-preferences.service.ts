import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { isForeignKeyViolation } from 'src/database/pg-errors';

import { MailChannel, MailMode } from './mail.types';
import {
  signUnsubscribeToken,
  UnsubscribeClaims,
  unsubscribeKey,
  verifyUnsubscribeToken,
} from './unsubscribe-token';

/** What an unsubscribe link can do now. */
export type UnsubscribeLinkState = 'valid' | 'used';

/**
 * Who wants which email (`mail_preference`; no row means the default, `immediate`) and the
 * one-click unsubscribe links (RFC 8058): signed with a key derived from the session secret, naming
 * the user, the channel and the message, each working once (`mail_unsubscribe`).
 */
@Injectable()
export class MailPreferencesService {
  private readonly keys: Buffer[];

  constructor(
    private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.keys = config.sessionSecrets.map(unsubscribeKey);
  }

  /** The stored choices of these users for a channel (users without a row keep the default). */
  async modes(userIds: string[], channel: MailChannel): Promise<Map<string, MailMode>> {
    if (userIds.length === 0) return new Map();
    const rows = await this.dataSource.query<{ user_id: string; mode: MailMode }[]>(
      `SELECT user_id, mode FROM mail_preference WHERE channel = $1 AND user_id = ANY($2::uuid[])`,
      [channel, userIds],
    );
    return new Map(rows.map((r) => [r.user_id, r.mode]));
  }

  /** One user's choice per channel (default `immediate`). */
  async modeOf(userId: string, channel: MailChannel): Promise<MailMode> {
    return (await this.modes([userId], channel)).get(userId) ?? 'immediate';
  }

  async set(userId: string, channel: MailChannel, mode: MailMode, manager?: EntityManager): Promise<void> {
    await (manager ?? this.dataSource).query(
      `INSERT INTO mail_preference (user_id, channel, mode, updated_at) VALUES ($1, $2, $3, now())
       ON CONFLICT (user_id, channel) DO UPDATE SET mode = EXCLUDED.mode, updated_at = now()`,
      [userId, channel, mode],
    );
  }

  /** The absolute one-click unsubscribe URL for one message (`tokenId`: its outbox id). */
  unsubscribeUrl(claims: UnsubscribeClaims): string {
    const token = signUnsubscribeToken(claims, this.keys[0]);
    return `${this.config.publicBaseUrl}/mail/unsubscribe?t=${encodeURIComponent(token)}`;
  }

  /** The channel a link turns off; null when it is not one of ours. */
  channelOf(token: unknown): MailChannel | null {
    return verifyUnsubscribeToken(token, this.keys)?.channel ?? null;
  }

  /** Whether a link is still good, or already used; null when it is not one of ours (forged, altered). */
  async inspect(token: unknown): Promise<UnsubscribeLinkState | null> {
    const claims = verifyUnsubscribeToken(token, this.keys);
    if (!claims) return null;
    const used = await this.dataSource.query<unknown[]>(
      `SELECT 1 FROM mail_unsubscribe WHERE token_id = $1`,
      [claims.tokenId],
    );
    return used.length > 0 ? 'used' : 'valid';
  }

  /**
   * Uses a link: the channel is turned off for its user, once. Returns `unsubscribed`, `used` (the
   * link was used before: nothing changes) or null (not a valid link: nothing changes).
   */
  async unsubscribe(token: unknown): Promise<'unsubscribed' | 'used' | null> {
    const claims = verifyUnsubscribeToken(token, this.keys);
    if (!claims) return null;
    try {
      return await this.dataSource.transaction(async (manager) => {
        const claimed = await manager.query<unknown[]>(
          `INSERT INTO mail_unsubscribe (token_id, user_id, channel) VALUES ($1, $2, $3)
           ON CONFLICT (token_id) DO NOTHING RETURNING token_id`,
          [claims.tokenId, claims.userId, claims.channel],
        );
        if (claimed.length === 0) return 'used';
        await manager.query(
          `INSERT INTO mail_preference (user_id, channel, mode, updated_at) VALUES ($1, $2, 'off', now())
           ON CONFLICT (user_id, channel) DO UPDATE SET mode = 'off', updated_at = now()`,
          [claims.userId, claims.channel],
        );
        return 'unsubscribed';
      });
    } catch (error) {
      // The user was deleted since the message was sent: there is nothing left to unsubscribe.
      if (isForeignKeyViolation(error)) return 'used';
      throw error;
    }
  }
}
