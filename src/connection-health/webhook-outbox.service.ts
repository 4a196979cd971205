import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';

import { CLAIM_LEASE_MS, ClaimedEntry, OutboxClaims } from './outbox-claims';

const BATCH = 20;
const WEBHOOK_TIMEOUT_MS = 10_000;

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

  private readonly claims: OutboxClaims;

  constructor(
    private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.claims = new OutboxClaims(dataSource, 'webhook');
  }

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
      const rows = await this.claims.claimDue<unknown>(now, BATCH, CLAIM_LEASE_MS);
      for (const entry of rows) {
        if (await this.post(url, entry, now)) delivered += 1;
      }
      if (rows.length < BATCH) return delivered;
    }
  }

  private async post(url: string, entry: ClaimedEntry<unknown>, now: Date): Promise<boolean> {
    const { id, attempts } = entry;
    let problem: string;
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': id, 'user-agent': 'epic-connect' },
        body: JSON.stringify(entry.payload),
        redirect: 'error',
        signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
      });
      await response.arrayBuffer().catch(() => undefined);
      if (response.ok) {
        await this.claims.delivered(entry);
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
    await this.claims.failed(entry, now, problem, parked);
    this.logger.warn(
      { outboxId: id, attempts, parked },
      `Webhook delivery failed (${problem})${parked ? '; giving up after the last attempt' : '; will retry'}`,
    );
    return false;
  }
}
