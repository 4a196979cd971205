import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';

/** How long a claimed delivery is reserved: a crash mid-delivery is retried after this. */
const CLAIM_LEASE_MS = 5 * 60_000;
const BATCH = 20;
const WEBHOOK_TIMEOUT_MS = 10_000;

/** Backoff before attempt n+1 (n ≥ 1): 10 s doubling, at most an hour, with ±20 % jitter. */
export function webhookBackoffMs(attempts: number, random: () => number = Math.random): number {
  const base = Math.min(3600_000, 10_000 * 2 ** Math.max(0, attempts - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

export interface OutboxBacklog {
  pending: number;
  failed: number;
  /** Age of the oldest pending delivery, in seconds (null when none is pending). */
  oldestPendingSeconds: number | null;
  /** The same counts per channel (`webhook`, `email`), for channels with something pending or parked. */
  byChannel: Record<string, { pending: number; failed: number }>;
}

/**
 * Delivers notifications to NOTIFY_WEBHOOK_URL from the `notification_outbox` table. Entries are
 * claimed with FOR UPDATE SKIP LOCKED and a lease (so instances share the work and none holds a
 * transaction during the HTTP call), posted with their id as `Idempotency-Key`, then marked
 * delivered, or rescheduled with backoff, or parked as failed after NOTIFY_WEBHOOK_MAX_ATTEMPTS.
 * Pending entries survive restarts. The URL is never logged (chat webhook URLs embed a secret).
 */
@Injectable()
export class WebhookOutboxService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(WebhookOutboxService.name);
  private timer?: NodeJS.Timeout;
  private running?: Promise<number>;

  constructor(
    private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.config.env.CRON_ENABLED || !this.config.env.NOTIFY_WEBHOOK_URL) return;
    this.timer = setInterval(() => void this.deliverDue(), this.config.env.OUTBOX_POLL_SECONDS * 1000);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Delivers what is due; returns how many were delivered. Never rejects. */
  deliverDue(now = new Date()): Promise<number> {
    this.running ??= this.deliverBatches(now)
      .catch((error: unknown) => {
        this.logger.error({ err: error }, 'Webhook delivery failed unexpectedly');
        return 0;
      })
      .finally(() => (this.running = undefined));
    return this.running;
  }

  /** Pending and parked deliveries of every channel (webhook and email), with a count per channel. */
  async backlog(now = new Date()): Promise<OutboxBacklog> {
    const rows = await this.dataSource.query<
      { channel: string; pending: number; failed: number; oldest: Date | null }[]
    >(
      `SELECT channel,
              count(*) FILTER (WHERE status = 'pending')::int AS pending,
              count(*) FILTER (WHERE status = 'failed')::int AS failed,
              min(created_at) FILTER (WHERE status = 'pending') AS oldest
         FROM notification_outbox
        WHERE status <> 'delivered'
        GROUP BY channel`,
    );
    const oldest = rows
      .map((r) => (r.oldest ? new Date(r.oldest).getTime() : Infinity))
      .reduce((a, b) => Math.min(a, b), Infinity);
    return {
      pending: rows.reduce((sum, r) => sum + r.pending, 0),
      failed: rows.reduce((sum, r) => sum + r.failed, 0),
      oldestPendingSeconds: Number.isFinite(oldest)
        ? Math.max(0, Math.round((now.getTime() - oldest) / 1000))
        : null,
      byChannel: Object.fromEntries(rows.map((r) => [r.channel, { pending: r.pending, failed: r.failed }])),
    };
  }

  private async deliverBatches(now: Date): Promise<number> {
    const url = this.config.env.NOTIFY_WEBHOOK_URL;
    if (!url) return 0;
    let delivered = 0;
    for (;;) {
      // UPDATE … RETURNING answers [rows, count] through TypeORM's query().
      const [rows] = await this.dataSource.query<
        [{ id: string; payload: unknown; attempts: number }[], number]
      >(
        // The lease is taken from the database's clock at each claim (a long run must not hand out
        // leases that have already run out), and the incremented attempt count marks the claim.
        `UPDATE notification_outbox
            SET next_attempt_at = GREATEST($1::timestamptz, clock_timestamp()) + make_interval(secs => $2),
                attempts = attempts + 1
          WHERE id IN (SELECT id FROM notification_outbox
                        WHERE channel = 'webhook' AND status = 'pending' AND next_attempt_at <= $1
                        ORDER BY next_attempt_at, id LIMIT ${BATCH} FOR UPDATE SKIP LOCKED)
          RETURNING id, payload, attempts`,
        [now, CLAIM_LEASE_MS / 1000],
      );
      for (const entry of rows) {
        if (await this.post(url, entry.id, entry.payload, entry.attempts, now)) delivered += 1;
      }
      if (rows.length < BATCH) return delivered;
    }
  }

  private async post(
    url: string,
    id: string,
    payload: unknown,
    attempts: number,
    now: Date,
  ): Promise<boolean> {
    let problem: string;
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': id, 'user-agent': 'epic-connect' },
        body: JSON.stringify(payload),
        redirect: 'error',
        signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
      });
      await response.arrayBuffer().catch(() => undefined);
      if (response.ok) {
        await this.dataSource.query(
          // Only our claim (same attempt count, still pending) may settle the entry.
          `UPDATE notification_outbox SET status = 'delivered', delivered_at = $2, last_error = NULL
            WHERE id = $1 AND attempts = $3 AND status = 'pending'`,
          [id, new Date(), attempts],
        );
        this.logger.log({ outboxId: id, attempts }, 'Delivered a notification to the webhook');
        return true;
      }
      problem = `the webhook answered HTTP ${response.status}`;
    } catch (error) {
      const name = (error as Error).name;
      problem =
        name === 'TimeoutError' ? 'the webhook did not answer in time' : 'the webhook could not be reached';
    }
    const parked = attempts >= this.config.env.NOTIFY_WEBHOOK_MAX_ATTEMPTS;
    await this.dataSource.query(
      `UPDATE notification_outbox SET status = $2, next_attempt_at = $3, last_error = $4
        WHERE id = $1 AND attempts = $5 AND status = 'pending'`,
      [
        id,
        parked ? 'failed' : 'pending',
        new Date(now.getTime() + webhookBackoffMs(attempts)),
        problem,
        attempts,
      ],
    );
    this.logger.warn(
      { outboxId: id, attempts, parked },
      `Webhook delivery failed (${problem})${parked ? '; giving up after the last attempt' : '; will retry'}`,
    );
    return false;
  }
}
