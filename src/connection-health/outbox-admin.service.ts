import { Injectable, Logger, NotFoundException } from '@nestjs/common';
import { DataSource } from 'typeorm';

import { AuditService } from 'src/audit/audit.service';
import { OrganizationsService } from 'src/organizations/organizations.service';
import { AuthUser } from 'src/users/user.view';

import { EmailOutboxService } from './email-outbox.service';
import { WebhookOutboxService } from './webhook-outbox.service';

/** Statuses of `notification_outbox` a root admin can list. */
export const OUTBOX_STATUSES = ['failed', 'pending'] as const;
export type OutboxStatus = (typeof OUTBOX_STATUSES)[number];

/**
 * One delivery of the outbox as a root admin sees it: where it goes and why it failed, never the
 * message (an email's body holds an unsubscribe link; a webhook's URL is configuration, not shown).
 */
export interface OutboxEntryView {
  id: string;
  channel: 'email' | 'webhook';
  status: OutboxStatus;
  /** An email's address; `webhook` for a webhook (its URL is not shown). */
  recipient: string;
  /** The organization the notice was about; null for a digest or a user's own connection. */
  organizationId: string | null;
  organizationName: string | null;
  attempts: number;
  lastError: string | null;
  createdAt: string;
  nextAttemptAt: string;
}

/**
 * The outbox's dead letters for root admins (src/connection-health/README.md, "Dead letters"):
 * the list, and Retry, which puts a parked delivery back to `pending` with its attempts reset.
 */
@Injectable()
export class OutboxAdminService {
  private readonly logger = new Logger(OutboxAdminService.name);

  constructor(
    private readonly dataSource: DataSource,
    private readonly audit: AuditService,
    private readonly email: EmailOutboxService,
    private readonly webhook: WebhookOutboxService,
    private readonly organizations: OrganizationsService,
  ) {}

  /** Deliveries in `status`, newest first (at most `limit`). */
  list(status: OutboxStatus, limit = 100): Promise<OutboxEntryView[]> {
    return this.select(`o.status = $1 ORDER BY o.created_at DESC, o.id LIMIT $2`, [status, limit]);
  }

  /**
   * Puts a failed delivery back to `pending`, due now, with its attempts reset (so it gets the full
   * number again), audited; then starts a delivery run (detached). 404 unless it is `failed`.
   */
  async retry(actor: AuthUser, id: string): Promise<OutboxEntryView> {
    const [rows] = await this.dataSource.query<[{ id: string; channel: 'email' | 'webhook' }[], number]>(
      `UPDATE notification_outbox
          SET status = 'pending', attempts = 0, next_attempt_at = now(), last_error = NULL
        WHERE id = $1 AND status = 'failed'
        RETURNING id, channel`,
      [id],
    );
    if (rows.length === 0) throw new NotFoundException('No failed delivery with this id.');
    const { channel } = rows[0];
    await this.audit.record({
      actor,
      action: 'notification.delivery-retried',
      detail: { outboxId: id, channel },
    });
    this.logger.log({ outboxId: id, channel }, 'A failed delivery was put back to pending');
    const [entry] = await this.select(`o.id = $1`, [id]);
    void (channel === 'email' ? this.email.deliverDue() : this.webhook.deliverDue());
    return entry;
  }

  private async select(where: string, params: unknown[]): Promise<OutboxEntryView[]> {
    const rows = await this.dataSource.query<
      {
        id: string;
        channel: 'email' | 'webhook';
        status: OutboxStatus;
        recipient: string | null;
        organization_id: string | null;
        attempts: number;
        last_error: string | null;
        created_at: Date;
        next_attempt_at: Date;
      }[]
    >(
      `SELECT o.id, o.channel, o.status, o.payload ->> 'to' AS recipient, n.organization_id, o.attempts,
              o.last_error, o.created_at, o.next_attempt_at
         FROM notification_outbox o
         LEFT JOIN notification n ON n.id = o.notification_id
        WHERE ${where}`,
      params,
    );
    const names = await this.organizations.names([
      ...new Set(rows.flatMap((r) => (r.organization_id ? [r.organization_id] : []))),
    ]);
    return rows.map((r) => ({
      id: r.id,
      channel: r.channel,
      status: r.status,
      recipient: r.channel === 'email' ? (r.recipient ?? '') : 'webhook',
      organizationId: r.organization_id,
      organizationName: r.organization_id ? (names.get(r.organization_id) ?? null) : null,
      attempts: r.attempts,
      lastError: r.last_error,
      createdAt: new Date(r.created_at).toISOString(),
      nextAttemptAt: new Date(r.next_attempt_at).toISOString(),
    }));
  }
}
