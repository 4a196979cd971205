import { createHash } from 'node:crypto';

import { Inject, Injectable } from '@nestjs/common';
import { normalizeIp } from '@nestjs/throttler';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';

import { ThrottleCounterService } from './throttle-counter.service';

/** The two counters one sign-in attempt touches. */
export interface LockoutKeys {
  /** This account from this client address (IPv6: its /64). */
  fromClient: string;
  /** This account from every address together. */
  account: string;
}

/**
 * What one failed sign-in did: it was counted and locked nothing; it was counted and locked the
 * account (for this address or everywhere); or a lock was already in force, so it was not counted.
 */
export type FailureOutcome = 'counted' | 'locks' | 'locked';

/**
 * Failed sign-ins, counted in PostgreSQL (ThrottleCounterService: the `throttle_counter` table the
 * login throttle uses, so every instance shares the counts and one sweep clears ended rows), per
 * sign-in email whether an account has it or not, so a lock looks the same for a known and an
 * unknown email:
 *
 * - ACCOUNT_LOCK_THRESHOLD failures from one client address within ACCOUNT_LOCK_MINUTES lock the
 *   account *for that address* for ACCOUNT_LOCK_MINUTES. Someone guessing from one address
 *   cannot lock the owner out from anywhere else.
 * - ACCOUNT_LOCK_GLOBAL_THRESHOLD failures from all addresses together (much higher) lock it
 *   everywhere for the same time: the bound on guessing from many addresses. This one does lock
 *   the owner out too, and ACCOUNT_LOCK_GLOBAL_THRESHOLD / ACCOUNT_LOCK_THRESHOLD addresses (20 by
 *   default) suffice to trigger it: a trade-off the README's Security section explains.
 *
 * A success clears that address's count, not the account-wide one. The lock never grows while it
 * lasts (attempts during it are not counted, on either counter). Emails are stored only as SHA-256
 * hashes.
 */
@Injectable()
export class LoginLockout {
  constructor(
    private readonly counters: ThrottleCounterService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  keys(email: string, clientIp: string | undefined): LockoutKeys {
    const account = `lockout:${accountHash(email)}`;
    const client = clientIp ? normalizeIp(clientIp) : 'unknown';
    return { account, fromClient: `${account}:${client}`.slice(0, 200) };
  }

  /** Whether either counter is locked now (asked only when the password matched). */
  isLocked(keys: LockoutKeys): Promise<boolean> {
    return this.counters.anyBlocked([keys.fromClient, keys.account]);
  }

  /**
   * One failure, in one statement: counted on both counters unless either is locked already
   * (parallel guesses each count). A window that ended starts again at one.
   */
  async recordFailure(keys: LockoutKeys): Promise<FailureOutcome> {
    const { ACCOUNT_LOCK_THRESHOLD, ACCOUNT_LOCK_GLOBAL_THRESHOLD, ACCOUNT_LOCK_MINUTES } = this.config.env;
    const span = ACCOUNT_LOCK_MINUTES * 60_000;
    const states = await this.counters.hit(
      [
        { key: keys.fromClient, blockAt: ACCOUNT_LOCK_THRESHOLD },
        { key: keys.account, blockAt: ACCOUNT_LOCK_GLOBAL_THRESHOLD },
      ],
      span,
      span,
    );
    if (states.some((s) => !s.counted)) return 'locked';
    return states.some((s) => s.blockMs > 0) ? 'locks' : 'counted';
  }

  /** After a successful sign-in: that address starts from zero (the account-wide count stays). */
  async clearClient(keys: LockoutKeys): Promise<void> {
    await this.counters.clear([keys.fromClient]);
  }

  /** After an operator's password reset: every count for the account ends. */
  async clearAccount(email: string): Promise<void> {
    const account = `lockout:${accountHash(email)}`;
    await this.counters.clear([account], [`${account}:`]);
  }
}

/** The counters' name for a sign-in email: case and surrounding spaces ignored, as sign-in does. */
function accountHash(email: string): string {
  return createHash('sha256').update(email.trim().toLowerCase()).digest('hex');
}
