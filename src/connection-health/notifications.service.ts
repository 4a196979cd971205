import { Inject, Injectable, NotFoundException } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { MailService } from 'src/mail/mail.service';
import { OrganizationsService } from 'src/organizations/organizations.service';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';

import { ConnectionState } from 'src/connections/connections.types';
import { Notification } from './entities/notification.entity';
import { connectionLinks, NotificationContent } from './notification-messages';

/** A notification as an admin sees it. */
export interface NotificationView {
  id: string;
  organizationId: string;
  organizationName: string;
  kind: Notification['kind'];
  state: ConnectionState;
  previousState: ConnectionState | null;
  title: string;
  message: string;
  link: string | null;
  createdAt: string;
  read: boolean;
}

interface NotificationRow {
  id: string;
  organization_id: string;
  kind: Notification['kind'];
  state: ConnectionState;
  previous_state: ConnectionState | null;
  title: string;
  message: string;
  link: string | null;
  created_at: Date;
  read: boolean;
}

/**
 * In-app notifications about connection states: written once per transition (by
 * ConnectionNotifier, inside its transaction, with the webhook outbox entry when a webhook is
 * configured), read per user. Org admins see their organization's; root admins see all.
 */
@Injectable()
export class NotificationsService {
  constructor(
    @InjectRepository(Notification) private readonly notifications: Repository<Notification>,
    private readonly organizations: OrganizationsService,
    private readonly mail: MailService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * Inside the caller's transaction: the notification, its webhook delivery when configured, and
   * (when email is configured) the mark that has EmailOutboxService work out its email recipients.
   */
  async create(
    manager: EntityManager,
    organization: { id: string; name: string },
    state: ConnectionState,
    previousState: ConnectionState | null,
    content: NotificationContent,
    now: Date,
  ): Promise<Notification> {
    const notification = manager.create(Notification, {
      organizationId: organization.id,
      kind: content.kind,
      state,
      previousState,
      title: content.title,
      message: content.message,
      link: content.link,
      // Emailed when email is configured: planned and sent from the outbox, never in this transaction.
      mailPending: this.mail.configured,
      createdAt: now,
    });
    await manager.insert(Notification, notification);
    if (this.config.env.NOTIFY_WEBHOOK_URL) {
      const payload: Record<string, unknown> = {
        text: content.text,
        event: content.kind === 'resolved' ? 'connection.resolved' : 'connection.attention',
        notificationId: notification.id,
        organization: { id: organization.id, name: organization.name },
        state,
        previousState,
        title: content.title,
        message: content.message,
        links: connectionLinks(this.config.publicBaseUrl, organization.id),
        occurredAt: now.toISOString(),
      };
      await manager.query(
        `INSERT INTO notification_outbox (notification_id, channel, payload, status, next_attempt_at)
         VALUES ($1, 'webhook', $2::jsonb, 'pending', $3)`,
        [notification.id, JSON.stringify(payload), now],
      );
    }
    return notification;
  }

  async list(
    user: AuthUser,
    options: { limit?: number; unreadOnly?: boolean; organizationId?: string } = {},
  ): Promise<NotificationView[]> {
    const scope = this.scope(user);
    const params = [...scope.params];
    let where = scope.where;
    if (options.organizationId) {
      params.push(options.organizationId);
      where += ` AND n.organization_id = $${params.length}`;
    }
    const rows = await this.notifications.query<NotificationRow[]>(
      `SELECT n.id, n.organization_id, n.kind, n.state, n.previous_state, n.title,
              n.message, n.link, n.created_at, (r.user_id IS NOT NULL) AS read
         FROM notification n
         LEFT JOIN notification_read r ON r.notification_id = n.id AND r.user_id = $1
        WHERE ${where} ${options.unreadOnly ? 'AND r.user_id IS NULL' : ''}
        ORDER BY n.created_at DESC, n.id
        LIMIT ${Math.min(Math.max(options.limit ?? 50, 1), 200)}`,
      params,
    );
    const names = await this.organizations.names([...new Set(rows.map((r) => r.organization_id))]);
    return rows.map((r) => ({
      id: r.id,
      organizationId: r.organization_id,
      organizationName: names.get(r.organization_id) ?? r.organization_id,
      kind: r.kind,
      state: r.state,
      previousState: r.previous_state,
      title: r.title,
      message: r.message,
      link: r.link,
      createdAt: new Date(r.created_at).toISOString(),
      read: r.read,
    }));
  }

  async unreadCount(user: AuthUser): Promise<number> {
    const { where, params } = this.scope(user);
    const [row] = await this.notifications.query<{ n: number }[]>(
      `SELECT count(*)::int AS n FROM notification n
         LEFT JOIN notification_read r ON r.notification_id = n.id AND r.user_id = $1
        WHERE ${where} AND r.user_id IS NULL`,
      params,
    );
    return row?.n ?? 0;
  }

  /** Marks one notification read for this user; 404 when it is not theirs to see. */
  async markRead(user: AuthUser, id: string): Promise<void> {
    const { where, params } = this.scope(user);
    const rows = await this.notifications.query<unknown[]>(
      `INSERT INTO notification_read (notification_id, user_id)
       SELECT n.id, $1 FROM notification n WHERE n.id = $${params.length + 1} AND ${where}
       ON CONFLICT DO NOTHING RETURNING notification_id`,
      [...params, id],
    );
    if (rows.length === 0 && !(await this.visible(user, id))) {
      throw new NotFoundException('No such notification');
    }
  }

  async markAllRead(user: AuthUser): Promise<number> {
    const { where, params } = this.scope(user);
    const rows = await this.notifications.query<unknown[]>(
      `INSERT INTO notification_read (notification_id, user_id)
       SELECT n.id, $1 FROM notification n WHERE ${where}
       ON CONFLICT DO NOTHING RETURNING notification_id`,
      params,
    );
    return rows.length;
  }

  private async visible(user: AuthUser, id: string): Promise<boolean> {
    const { where, params } = this.scope(user);
    const rows = await this.notifications.query<unknown[]>(
      `SELECT 1 FROM notification n WHERE n.id = $${params.length + 1} AND ${where} AND $1::uuid IS NOT NULL`,
      [...params, id],
    );
    return rows.length > 0;
  }

  /** `$1` is always the user id; org admins are limited to their organization. */
  private scope(user: AuthUser): { where: string; params: unknown[] } {
    if (user.role === Role.RootAdmin) return { where: 'TRUE', params: [user.id] };
    return { where: 'n.organization_id = $2', params: [user.id, user.organizationId] };
  }
}
