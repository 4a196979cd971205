import { createHash } from 'node:crypto';

import { Inject, Injectable } from '@nestjs/common';
import { normalizeIp } from '@nestjs/throttler';
import { DataSource } from 'typeorm';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';

/** The two counters one sign-in attempt touches. */
export interface LockoutKeys {
  /** This account from this client address (IPv6: its /64). */
  fromClient: string;
  /** This account from every address together. */
  account: string;
}

/**
 * Failed sign-ins, counted in PostgreSQL (the `throttle_counter` table the login throttle uses, so
 * every instance shares the counts and one sweep clears ended rows), per sign-in email whether an
 * account has it or not, so a lock looks the same for a known and an unknown email:
 *
 * - ACCOUNT_LOCK_THRESHOLD failures from one client address within ACCOUNT_LOCK_MINUTES lock the
 *   account *for that address* for ACCOUNT_LOCK_MINUTES. Someone guessing from one address
 *   cannot lock the owner out from anywhere else.
 * - ACCOUNT_LOCK_GLOBAL_THRESHOLD failures from all addresses together (much higher) lock it
 *   everywhere for the same time: the bound on guessing from many addresses.
 *
 * A success clears that address's count, not the account-wide one. The lock never grows while it
 * lasts (attempts during it are not counted). Emails are stored only as SHA-256 hashes.
 */
@Injectable()
export class LoginLockout {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  keys(email: string, clientIp: string | undefined): LockoutKeys {
    const account = `lockout:${accountHash(email)}`;
    const client = clientIp ? normalizeIp(clientIp) : 'unknown';
    return { account, fromClient: `${account}:${client}`.slice(0, 200) };
  }

  /** Whether either counter is locked now. */
  async isLocked(keys: LockoutKeys): Promise<boolean> {
    const rows = await this.dataSource.query<unknown[]>(
      `SELECT 1 FROM throttle_counter WHERE key = ANY($1::text[]) AND blocked_until > now()`,
      [[keys.fromClient, keys.account]],
    );
    return rows.length > 0;
  }

  /**
   * Counts one failure on both counters in one statement (parallel guesses each count); returns
   * whether this failure locked either. A window that ended starts again at one.
   */
  async recordFailure(keys: LockoutKeys): Promise<boolean> {
    const { ACCOUNT_LOCK_THRESHOLD, ACCOUNT_LOCK_GLOBAL_THRESHOLD, ACCOUNT_LOCK_MINUTES } = this.config.env;
    const rows = await this.dataSource.query<{ locked: boolean }[]>(
      `WITH args AS (SELECT $5::double precision * interval '1 minute' AS span)
       INSERT INTO throttle_counter AS t (key, hits, window_ends_at, blocked_until)
       SELECT k.key, 1, now() + args.span, CASE WHEN 1 >= k.threshold THEN now() + args.span END
         FROM unnest($1::text[], $2::int[]) AS k(key, threshold), args
       ON CONFLICT (key) DO UPDATE SET
         hits = CASE WHEN t.blocked_until > now() THEN t.hits
                     WHEN t.window_ends_at <= now() THEN 1
                     ELSE t.hits + 1 END,
         window_ends_at = CASE WHEN t.blocked_until > now() THEN t.window_ends_at
                               WHEN t.window_ends_at <= now() THEN EXCLUDED.window_ends_at
                               ELSE t.window_ends_at END,
         blocked_until = CASE WHEN t.blocked_until > now() THEN t.blocked_until
                              WHEN (CASE WHEN t.window_ends_at <= now() THEN 1 ELSE t.hits + 1 END)
                                   >= (CASE WHEN t.key = $3 THEN $4::int ELSE $6::int END)
                                THEN now() + (SELECT span FROM args)
                              END
       RETURNING (blocked_until IS NOT NULL AND blocked_until > now()) AS locked`,
      [
        [keys.fromClient, keys.account],
        [ACCOUNT_LOCK_THRESHOLD, ACCOUNT_LOCK_GLOBAL_THRESHOLD],
        keys.account,
        ACCOUNT_LOCK_GLOBAL_THRESHOLD,
        ACCOUNT_LOCK_MINUTES,
        ACCOUNT_LOCK_THRESHOLD,
      ],
    );
    return rows.some((r) => r.locked);
  }

  /** After a successful sign-in: that address starts from zero (the account-wide count stays). */
  async clearClient(keys: LockoutKeys): Promise<void> {
    await this.dataSource.query(`DELETE FROM throttle_counter WHERE key = $1`, [keys.fromClient]);
  }

  /** After an operator's password reset: every count for the account ends. */
  async clearAccount(email: string): Promise<void> {
    const account = `lockout:${accountHash(email)}`;
    await this.dataSource.query(`DELETE FROM throttle_counter WHERE key = $1 OR key LIKE $2`, [
      account,
      `${account}:%`,
    ]);
  }
}

/** The counters' name for a sign-in email: case and surrounding spaces ignored, as sign-in does. */
function accountHash(email: string): string {
  return createHash('sha256').update(email.trim().toLowerCase()).digest('hex');
}
