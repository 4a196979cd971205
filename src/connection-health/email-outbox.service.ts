import { randomUUID } from 'node:crypto';

import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { ConnectionState } from 'src/connections/connections.types';
import { DbLockService } from 'src/database/db-lock.service';
import { MailPreferencesService } from 'src/mail/mail-preferences.service';
import { MailRenderService } from 'src/mail/mail-render.service';
import { MailDeliveryError, MailService } from 'src/mail/mail.service';
import { MailChannel, OutgoingMail } from 'src/mail/mail.types';
import { serverLabel } from 'src/organizations/organization.types';
import { OrganizationsService } from 'src/organizations/organizations.service';
import { Role } from 'src/users/user.types';
import { UserView } from 'src/users/user.view';
import { UsersService } from 'src/users/users.service';

import { DeliveryMode, digestSubject, nextDigestAt, planDelivery, STATE_WORDS } from './email-plan';
import { CLAIM_LEASE_MS, ClaimedEntry, OutboxClaims } from './outbox-claims';

/** The channel connection notices to admins go out on (its preference and unsubscribe). */
const CHANNEL: MailChannel = 'admin-connections';
/** The channel a provider's or patient's "your connection ended" goes out on. */
const OWN_CHANNEL: MailChannel = 'own-connection';
/** When composing a recipient's message fails (a bug, bad data), their rows are tried again after this. */
const COMPOSE_RETRY_MS = 5 * 60_000;
const SEND_BATCH = 20;
const PLAN_BATCH = 200;
const COMPOSE_BATCH = 2000;
/** A notification not planned within this long (email was switched off meanwhile) is not mailed any more. */
const STALE_AFTER_MS = 24 * 3600_000;
/** Launch users' placeholder addresses (src/users/README.md): nobody reads them, never mail them. */
const UNDELIVERABLE = /@launch\.invalid$/i;

interface DueItem {
  notification_id: string;
  user_id: string;
  mode: DeliveryMode;
  organization_id: string;
  state: ConnectionState;
  title: string;
  message: string;
  created_at: Date;
}

/** One change as the templates show it. */
interface ChangeView {
  organizationName: string;
  state: string;
  title: string;
  message: string;
  occurredAt: string;
  fixUrl: string;
}

/**
 * Connection notices by email, through `notification_outbox` (channel `email`), in three steps:
 *
 * 1. Plan: notifications the notifier marked `mail_pending` (in its transaction) get one
 *    `notification_recipient` row per admin who wants email (org admins of the organization, root
 *    admins), with a mode and a due time from their preference. The primary key (notification,
 *    recipient) is the idempotency key: at most one email per transition per recipient.
 * 2. Compose: due recipient rows become messages, one outbox row each: an org admin's `immediate`
 *    one per change, a root admin's changes of MAIL_BURST_WINDOW_SECONDS folded into one, digests
 *    at DIGEST_HOUR_UTC. Beyond MAIL_HOURLY_CAP messages per recipient per hour the rest wait for
 *    the next daily digest. Plan and compose run on one instance at a time (an advisory lock).
 * 3. Send: outbox rows are claimed with FOR UPDATE SKIP LOCKED and a lease (so two instances
 *    never send the same row at once), handed to SMTP with a Message-ID derived from the row,
 *    marked delivered, or retried with the webhook's backoff and parked as `failed` after
 *    MAIL_MAX_ATTEMPTS. At least once: a crash between the server's "250" and our write sends the
 *    row again, with the same Message-ID.
 *
 * Nothing here runs inside a request or the scheduled check's transaction: the notifier only marks
 * the notification, and this runs on its own poll (and right after a notice, detached).
 */
@Injectable()
export class EmailOutboxService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(EmailOutboxService.name);
  private timer?: NodeJS.Timeout;
  private running?: Promise<number>;
  /** The one run queued behind the current one, shared by every call made meanwhile. */
  private queued?: Promise<number>;
  /** The clock the queued run uses: the latest asked for. */
  private queuedNow?: Date;
  /** Runs started since boot (plan, compose, send): for tests and logs. */
  runsStarted = 0;
  /**
   * The claim lease in milliseconds; tests shorten it. Each row's claim is renewed just before it
   * is sent, so a batch's last row is never sent on a lease that lapsed while the others went out.
   */
  claimLeaseMs = CLAIM_LEASE_MS;
  private readonly claims: OutboxClaims;

  constructor(
    private readonly dataSource: DataSource,
    private readonly mail: MailService,
    private readonly render: MailRenderService,
    private readonly preferences: MailPreferencesService,
    private readonly users: UsersService,
    private readonly organizations: OrganizationsService,
    private readonly locks: DbLockService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.claims = new OutboxClaims(dataSource, 'email');
  }

  /** Whether notices are emailed at all (SMTP configured). */
  get enabled(): boolean {
    return this.mail.configured;
  }

  onApplicationBootstrap(): void {
    if (!this.config.env.CRON_ENABLED || !this.enabled) return;
    this.timer = setInterval(() => {
      if (!this.running) void this.deliverDue();
    }, this.config.env.OUTBOX_POLL_SECONDS * 1000);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /**
   * Plans, composes and sends what is due at `now`; returns how many emails the run sent. At most
   * one run at a time in this process: calls made during a run share one follow-up run (with the
   * latest `now` asked for), started when the current one ends, so a burst of notices queues at
   * most one more run, not one each. Never rejects.
   */
  deliverDue(now = new Date()): Promise<number> {
    if (!this.enabled) return Promise.resolve(0);
    if (!this.running) return this.start(now);
    this.queuedNow = now;
    this.queued ??= this.running.then(() => {
      const at = this.queuedNow ?? now;
      this.queued = undefined;
      this.queuedNow = undefined;
      return this.start(at);
    });
    return this.queued;
  }

  private start(now: Date): Promise<number> {
    this.runsStarted += 1;
    const run = this.runOnce(now).catch((error: unknown) => {
      this.logger.error({ err: error }, 'Email delivery failed unexpectedly');
      return 0;
    });
    this.running = run;
    void run.finally(() => {
      if (this.running === run) this.running = undefined;
    });
    return run;
  }

  /** The three steps; a failure of one is logged and the others still run (sending always does). */
  private async runOnce(now: Date): Promise<number> {
    try {
      await this.locks.tryRunExclusive('mail-compose', async () => {
        await this.step('plan', () => this.plan(now));
        await this.step('compose', () => this.compose(now));
        await this.step('compose own-connection', () => this.composeOwnConnection(now));
      });
    } catch (error) {
      this.logger.error({ err: error }, 'Email planning failed; sending what is queued');
    }
    return this.send(now);
  }

  private async step(name: string, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      this.logger.error({ err: error, step: name }, `Email ${name} step failed`);
    }
  }

  /**
   * Runs `work` for one recipient or notice inside the step's transaction, under a savepoint: when
   * it fails, its writes are undone, `onFailure` runs (it pushes the rows back so they do not block
   * the others), the error is logged, and the others go on.
   */
  private async isolated(
    manager: EntityManager,
    what: Record<string, string>,
    work: () => Promise<void>,
    onFailure: () => Promise<void>,
  ): Promise<void> {
    await manager.query('SAVEPOINT mail_compose_one');
    try {
      await work();
      await manager.query('RELEASE SAVEPOINT mail_compose_one');
    } catch (error) {
      await manager.query('ROLLBACK TO SAVEPOINT mail_compose_one');
      await onFailure();
      this.logger.error({ err: error, ...what }, 'Could not compose an email; tried again later');
    }
  }

  /** Step 1: recipients for the notifications marked `mail_pending`. */
  private async plan(now: Date): Promise<void> {
    const roots = (await this.users.listRootAdmins()).filter(reachable);
    const orgAdmins = new Map<string, UserView[]>();
    for (;;) {
      const planned = await this.dataSource.transaction(async (manager) => {
        const notifications = await manager.query<
          { id: string; organization_id: string; created_at: Date }[]
        >(
          `SELECT id, organization_id, created_at FROM notification
            WHERE mail_pending ORDER BY created_at, id LIMIT ${PLAN_BATCH} FOR UPDATE SKIP LOCKED`,
        );
        if (notifications.length === 0) return 0;
        for (const { organization_id: orgId } of notifications) {
          if (!orgAdmins.has(orgId)) {
            orgAdmins.set(orgId, (await this.users.listOrgAdmins(orgId)).filter(reachable));
          }
        }
        const everyone = [...roots, ...[...orgAdmins.values()].flat()];
        const modes = await this.preferences.modes(
          everyone.map((u) => u.id),
          CHANNEL,
        );
        const rows: [string, string, DeliveryMode, Date][] = [];
        for (const n of notifications) {
          // Marked while email was configured, and found only now that it is again: old news, not mailed.
          if (now.getTime() - new Date(n.created_at).getTime() > STALE_AFTER_MS) continue;
          for (const user of [...(orgAdmins.get(n.organization_id) ?? []), ...roots]) {
            const plan = planDelivery(
              { root: user.role === Role.RootAdmin, mode: modes.get(user.id) ?? 'immediate' },
              new Date(n.created_at),
              {
                burstWindowSeconds: this.config.env.MAIL_BURST_WINDOW_SECONDS,
                digestHourUtc: this.config.env.DIGEST_HOUR_UTC,
              },
            );
            if (plan) rows.push([n.id, user.id, plan.mode, plan.dueAt]);
          }
        }
        if (rows.length > 0) {
          await manager.query(
            `INSERT INTO notification_recipient (notification_id, user_id, mode, due_at)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::varchar[], $4::timestamptz[])
             ON CONFLICT (notification_id, user_id) DO NOTHING`,
            [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2]), rows.map((r) => r[3])],
          );
        }
        await manager.query(`UPDATE notification SET mail_pending = false WHERE id = ANY($1::uuid[])`, [
          notifications.map((n) => n.id),
        ]);
        return notifications.length;
      });
      if (planned < PLAN_BATCH) return;
    }
  }

  /** Step 2: due recipient rows → messages in the outbox. */
  private async compose(now: Date): Promise<void> {
    for (;;) {
      const seen = await this.dataSource.transaction(async (manager) => {
        const items = await manager.query<DueItem[]>(
          `SELECT r.notification_id, r.user_id, r.mode, n.organization_id, n.state, n.title, n.message,
                  n.created_at
             FROM notification_recipient r
             JOIN notification n ON n.id = r.notification_id
            WHERE r.composed_at IS NULL
              AND (r.due_at <= $1
                   -- A root admin's burst goes out whole: once one of its changes is due, all their
                   -- changes not yet composed come along, so one burst spread over several polls is
                   -- still one message.
                   OR (r.mode = 'burst' AND EXISTS (
                         SELECT 1 FROM notification_recipient d
                          WHERE d.user_id = r.user_id AND d.mode = 'burst' AND d.composed_at IS NULL
                            AND d.due_at <= $1)))
            ORDER BY r.user_id, n.created_at, n.id
            LIMIT ${COMPOSE_BATCH}
            FOR UPDATE OF r SKIP LOCKED`,
          [now],
        );
        if (items.length === 0) return 0;
        const byUser = new Map<string, DueItem[]>();
        for (const item of items) byUser.set(item.user_id, [...(byUser.get(item.user_id) ?? []), item]);
        const users = new Map((await this.users.findViews([...byUser.keys()])).map((u) => [u.id, u]));
        const modes = await this.preferences.modes([...byUser.keys()], CHANNEL);
        const names = await this.organizations.names([...new Set(items.map((i) => i.organization_id))]);
        for (const [userId, mine] of byUser) {
          const user = users.get(userId);
          // Unsubscribed, disabled or gone since the plan: nothing is sent, and nothing waits.
          if (!user || !reachable(user) || modes.get(userId) === 'off') {
            await this.markComposed(manager, mine, null, now);
            continue;
          }
          await this.isolated(
            manager,
            { userId },
            () => this.composeFor(manager, user, mine, names, now),
            () =>
              manager.query(
                `UPDATE notification_recipient SET due_at = $3
                  WHERE user_id = $1 AND notification_id = ANY($2::uuid[]) AND composed_at IS NULL`,
                [userId, mine.map((i) => i.notification_id), new Date(now.getTime() + COMPOSE_RETRY_MS)],
              ),
          );
        }
        return items.length;
      });
      if (seen < COMPOSE_BATCH) return;
    }
  }

  private async composeFor(
    manager: EntityManager,
    user: UserView,
    items: DueItem[],
    names: Map<string, string>,
    now: Date,
  ): Promise<void> {
    const [{ sent }] = await manager.query<{ sent: number }[]>(
      `SELECT count(*)::int AS sent FROM notification_outbox
        WHERE recipient_user_id = $1 AND channel = 'email' AND created_at > $2`,
      [user.id, new Date(now.getTime() - 3600_000)],
    );
    let budget = this.config.env.MAIL_HOURLY_CAP - sent;
    const held: DueItem[] = [];
    for (const item of items.filter((i) => i.mode === 'immediate')) {
      if (budget <= 0) {
        held.push(item);
        continue;
      }
      await this.enqueue(manager, user, [item], names, now, false);
      budget -= 1;
    }
    const digest = items.filter((i) => i.mode === 'digest');
    const burst = items.filter((i) => i.mode === 'burst');
    if (digest.length > 0) {
      // The daily digest goes out whatever the cap: it is where held-back changes end up, those of
      // this very pass included (not tomorrow's).
      await this.enqueue(manager, user, [...digest, ...burst, ...held], names, now, true);
      return;
    }
    if (burst.length > 0) {
      if (budget > 0) await this.enqueue(manager, user, burst, names, now, false);
      else held.push(...burst);
    }
    if (held.length > 0) {
      // Over the hourly cap: folded into the next daily digest.
      await manager.query(
        `UPDATE notification_recipient SET mode = 'digest', due_at = $3
          WHERE user_id = $1 AND notification_id = ANY($2::uuid[])`,
        [user.id, held.map((i) => i.notification_id), nextDigestAt(now, this.config.env.DIGEST_HOUR_UTC)],
      );
      this.logger.log(
        { userId: user.id, held: held.length },
        'Hourly email cap reached: changes folded into the next daily digest',
      );
    }
  }

  /** One message for `items` (a single change, or a digest of several) as a pending outbox row. */
  private async enqueue(
    manager: EntityManager,
    user: UserView,
    items: DueItem[],
    names: Map<string, string>,
    now: Date,
    daily: boolean,
  ): Promise<void> {
    const outboxId = randomUUID();
    const mail = this.message(outboxId, user, items, names, daily);
    await manager.query(
      `INSERT INTO notification_outbox
              (id, notification_id, recipient_user_id, channel, payload, status, next_attempt_at, created_at)
       VALUES ($1, $2, $3, 'email', $4::jsonb, 'pending', $5, $5)`,
      [outboxId, items.length === 1 ? items[0].notification_id : null, user.id, JSON.stringify(mail), now],
    );
    await this.markComposed(manager, items, outboxId, now);
  }

  private async markComposed(
    manager: EntityManager,
    items: DueItem[],
    outboxId: string | null,
    now: Date,
  ): Promise<void> {
    await manager.query(
      `UPDATE notification_recipient SET composed_at = $3, outbox_id = $4
        WHERE user_id = $1 AND notification_id = ANY($2::uuid[])`,
      [items[0].user_id, items.map((i) => i.notification_id), now, outboxId],
    );
  }

  /** Renders the message: nothing in it but organization names, states and links (no token, no patient). */
  private message(
    outboxId: string,
    user: UserView,
    items: DueItem[],
    names: Map<string, string>,
    daily: boolean,
  ): OutgoingMail {
    const base = this.config.publicBaseUrl;
    const changes: ChangeView[] = items.map((i) => ({
      organizationName: names.get(i.organization_id) ?? 'An organization',
      state: STATE_WORDS[i.state],
      title: i.title,
      message: i.message,
      occurredAt: new Date(i.created_at).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      // The registration page, whose Reconnect fixes an ended connection (root admins choose the organization with ?org=).
      fixUrl: `${base}/admin/epic/registration?org=${i.organization_id}`,
    }));
    const unsubscribeUrl = this.preferences.unsubscribeUrl({
      userId: user.id,
      channel: CHANNEL,
      tokenId: outboxId,
    });
    const single = items.length === 1 && !daily;
    const context = {
      product: 'epic-connect',
      baseUrl: base,
      accountUrl: `${base}/account`,
      unsubscribeUrl,
      root: user.role === Role.RootAdmin,
      daily,
      change: changes[0],
      changes,
      count: changes.length,
    };
    return this.mail.message(outboxId, {
      to: user.email,
      subject: single
        ? items[0].title
        : digestSubject(
            items.map((i) => i.state),
            daily,
          ),
      body: this.render.render(single ? 'connection-change' : 'connection-digest', context),
      unsubscribeUrl,
    });
  }

  /**
   * Users' own connections (OwnConnectionNoticesService): each pending notice becomes one message to
   * the user's contact address, in the transaction that clears its `mail_pending` (so once per
   * ending). None when they have no contact address, turned `own-connection` off, are disabled or
   * gone, or the notice is older than a day. Over MAIL_HOURLY_CAP the notice waits until the hour
   * has room (these users have no digest).
   */
  private async composeOwnConnection(now: Date): Promise<void> {
    for (;;) {
      const seen = await this.dataSource.transaction(async (manager) => {
        const notices = await manager.query<
          { id: string; user_id: string; organization_id: string; created_at: Date }[]
        >(
          `SELECT id, user_id, organization_id, created_at FROM user_connection_notice
            WHERE mail_pending AND mail_due_at <= $1
            ORDER BY mail_due_at, id LIMIT ${PLAN_BATCH} FOR UPDATE SKIP LOCKED`,
          [now],
        );
        if (notices.length === 0) return 0;
        const ids = [...new Set(notices.map((n) => n.user_id))];
        const users = new Map((await this.users.findViews(ids)).map((u) => [u.id, u]));
        const addresses = await this.users.contactEmails(ids);
        const modes = await this.preferences.modes(ids, OWN_CHANNEL);
        for (const notice of notices) {
          const user = users.get(notice.user_id);
          const to = addresses.get(notice.user_id);
          const stale = now.getTime() - new Date(notice.created_at).getTime() > STALE_AFTER_MS;
          if (!user || user.disabled || !to || modes.get(notice.user_id) === 'off' || stale) {
            await manager.query(`UPDATE user_connection_notice SET mail_pending = false WHERE id = $1`, [
              notice.id,
            ]);
            continue;
          }
          const [{ sent, oldest }] = await manager.query<{ sent: number; oldest: Date | null }[]>(
            `SELECT count(*)::int AS sent, min(created_at) AS oldest FROM notification_outbox
              WHERE recipient_user_id = $1 AND channel = 'email' AND created_at > $2`,
            [user.id, new Date(now.getTime() - 3600_000)],
          );
          if (sent >= this.config.env.MAIL_HOURLY_CAP) {
            // Over the hourly cap: tried again when the oldest of the hour's messages leaves the window.
            const dueAt = new Date(
              Math.max(now.getTime(), new Date(oldest ?? now).getTime() + 3600_000) + 1000,
            );
            await manager.query(`UPDATE user_connection_notice SET mail_due_at = $2 WHERE id = $1`, [
              notice.id,
              dueAt,
            ]);
            continue;
          }
          await this.isolated(
            manager,
            { noticeId: notice.id },
            async () => {
              const outboxId = randomUUID();
              const mail = await this.ownConnectionMessage(outboxId, user, to, notice.organization_id);
              await manager.query(
                `INSERT INTO notification_outbox
                        (id, notification_id, recipient_user_id, channel, payload, status, next_attempt_at, created_at)
                 VALUES ($1, NULL, $2, 'email', $3::jsonb, 'pending', $4, $4)`,
                [outboxId, user.id, JSON.stringify(mail), now],
              );
              await manager.query(
                `UPDATE user_connection_notice SET mail_pending = false, outbox_id = $2 WHERE id = $1`,
                [notice.id, outboxId],
              );
            },
            () =>
              manager.query(`UPDATE user_connection_notice SET mail_due_at = $2 WHERE id = $1`, [
                notice.id,
                new Date(now.getTime() + COMPOSE_RETRY_MS),
              ]),
          );
        }
        return notices.length;
      });
      if (seen < PLAN_BATCH) return;
    }
  }

  /**
   * "Your connection with <organization> ended": the organization's name and what to do, nothing
   * else (no name, record id or fhirUser: the user's page shows those after they sign in).
   */
  private async ownConnectionMessage(
    outboxId: string,
    user: UserView,
    to: string,
    organizationId: string,
  ): Promise<OutgoingMail> {
    const base = this.config.publicBaseUrl;
    const org = await this.organizations.get(organizationId);
    const patient = user.role === Role.Patient;
    const unsubscribeUrl = this.preferences.unsubscribeUrl({
      userId: user.id,
      channel: OWN_CHANNEL,
      tokenId: outboxId,
    });
    const context = {
      product: 'epic-connect',
      baseUrl: base,
      organizationName: org.name,
      // "Epic", the name its administrator gave the server, or "the EHR".
      serverName: serverLabel(org).name,
      patient,
      // Patients connect again through the organization's standalone launch; providers launch the app from their EHR.
      reconnectUrl: patient ? `${base}/fhir/epic-connect?org=${encodeURIComponent(org.slug)}` : null,
      pageUrl: patient ? `${base}/launch/patient` : null,
      unsubscribeUrl,
    };
    return this.mail.message(outboxId, {
      to,
      subject: `Your connection with ${org.name} ended`,
      body: this.render.render('own-connection-ended', context),
      unsubscribeUrl,
    });
  }

  /** Step 3: claims due emails (SKIP LOCKED, leased) and hands them to SMTP. */
  private async send(now: Date): Promise<number> {
    let delivered = 0;
    for (;;) {
      const rows = await this.claims.claimDue<OutgoingMail>(now, SEND_BATCH, this.claimLeaseMs);
      for (const entry of rows) {
        // The batch was claimed at once, but its rows go out one by one: a slow server can let a
        // later row's lease lapse, and another instance claim it (its attempt count moves on).
        // Renew our claim just before sending; if it is no longer ours, leave the row alone.
        if (!(await this.claims.renew(entry, now, this.claimLeaseMs))) {
          this.logger.log({ outboxId: entry.id }, 'Email claimed by another instance meanwhile; skipped');
          continue;
        }
        if (await this.deliver(entry, now)) delivered += 1;
      }
      if (rows.length < SEND_BATCH) return delivered;
    }
  }

  private async deliver(entry: ClaimedEntry<OutgoingMail>, now: Date): Promise<boolean> {
    const { id, attempts } = entry;
    try {
      await this.mail.send(entry.payload);
      await this.claims.delivered(entry);
      this.logger.log({ outboxId: id, attempts }, 'Sent a notification email');
      return true;
    } catch (error) {
      const problem =
        error instanceof MailDeliveryError ? error.message : 'sending failed (unexpected error)';
      // A permanent refusal (5xx, e.g. 550 user unknown) will not change on retry: parked at once.
      const permanent = error instanceof MailDeliveryError && error.permanent;
      const parked = permanent || attempts >= this.config.env.MAIL_MAX_ATTEMPTS;
      await this.claims.failed(entry, now, problem, parked);
      this.logger.warn(
        { outboxId: id, attempts, parked },
        `Email delivery failed (${problem})${
          permanent
            ? '; refused for good, not retried'
            : parked
              ? '; giving up after the last attempt'
              : '; will retry'
        }`,
      );
      return false;
    }
  }
}

/** An admin who can receive email: enabled, with a real address. */
const reachable = (user: UserView): boolean => !user.disabled && !UNDELIVERABLE.test(user.email);
