import { DataSource } from 'typeorm';

/** How long a claimed delivery is reserved: a crash mid-delivery is retried after this. */
export const CLAIM_LEASE_MS = 5 * 60_000;

export type OutboxChannel = 'webhook' | 'email';

export interface ClaimedEntry<T> {
  id: string;
  payload: T;
  /** The attempt count after this claim: it marks the claim, and only it may settle the entry. */
  attempts: number;
}

/** Backoff before attempt n+1 (n ≥ 1): 10 s doubling, at most an hour, with ±20 % jitter. */
export function outboxBackoffMs(attempts: number, random: () => number = Math.random): number {
  const base = Math.min(3600_000, 10_000 * 2 ** Math.max(0, attempts - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/**
 * The claim-and-settle steps of `notification_outbox` that every channel's delivery shares: due
 * entries claimed with FOR UPDATE SKIP LOCKED and a lease (so instances share the work and none
 * holds a transaction while it delivers), each claim marked by its incremented attempt count, and
 * an entry settled only by the claim that holds it.
 */
export class OutboxClaims {
  constructor(
    private readonly dataSource: DataSource,
    private readonly channel: OutboxChannel,
  ) {}

  /**
   * Claims up to `limit` due entries for `leaseMs`. The lease runs from the database's clock at
   * the claim: a long run must not hand out leases that have already run out.
   */
  async claimDue<T>(now: Date, limit: number, leaseMs: number): Promise<ClaimedEntry<T>[]> {
    // UPDATE … RETURNING answers [rows, count] through TypeORM's query().
    const [rows] = await this.dataSource.query<[ClaimedEntry<T>[], number]>(
      `UPDATE notification_outbox
          SET next_attempt_at = GREATEST($1::timestamptz, clock_timestamp()) + make_interval(secs => $2),
              attempts = attempts + 1
        WHERE id IN (SELECT id FROM notification_outbox
                      WHERE channel = $3 AND status = 'pending' AND next_attempt_at <= $1
                      ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
        RETURNING id, payload, attempts`,
      [now, leaseMs / 1000, this.channel, limit],
    );
    return rows;
  }

  /** Extends the lease of one claimed entry if the claim is still ours (same attempt count, pending). */
  async renew(entry: ClaimedEntry<unknown>, now: Date, leaseMs: number): Promise<boolean> {
    const [rows] = await this.dataSource.query<[{ id: string }[], number]>(
      `UPDATE notification_outbox
          SET next_attempt_at = GREATEST($3::timestamptz, clock_timestamp()) + make_interval(secs => $4)
        WHERE id = $1 AND attempts = $2 AND status = 'pending' AND channel = $5
        RETURNING id`,
      [entry.id, entry.attempts, now, leaseMs / 1000, this.channel],
    );
    return rows.length === 1;
  }

  /** Marks our claimed entry delivered. */
  async delivered(entry: ClaimedEntry<unknown>): Promise<void> {
    await this.dataSource.query(
      `UPDATE notification_outbox SET status = 'delivered', delivered_at = $2, last_error = NULL
        WHERE id = $1 AND attempts = $3 AND status = 'pending'`,
      [entry.id, new Date(), entry.attempts],
    );
  }

  /** Our claimed entry failed: parked as `failed`, or due again after the backoff. */
  async failed(entry: ClaimedEntry<unknown>, now: Date, problem: string, parked: boolean): Promise<void> {
    await this.dataSource.query(
      `UPDATE notification_outbox SET status = $2, next_attempt_at = $3, last_error = $4
        WHERE id = $1 AND attempts = $5 AND status = 'pending'`,
      [
        entry.id,
        parked ? 'failed' : 'pending',
        new Date(now.getTime() + outboxBackoffMs(entry.attempts)),
        problem,
        entry.attempts,
      ],
    );
  }
}
