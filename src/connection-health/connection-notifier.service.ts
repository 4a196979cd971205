import { Inject, Injectable, Logger } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { DataSource } from 'typeorm';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { ConnectionEvent, OnAnyConnectionEvent } from 'src/connections/connections.events';
import { ConnectionsService } from 'src/connections/connections.service';
import { EpicClientChangedEvent, OrganizationEvents } from 'src/organizations/organizations.events';

import {
  ConnectionSnapshot,
  ConnectionState,
  ConnectionsReadModel,
} from 'src/connections/connections.read-model';
import { EmailOutboxService } from './email-outbox.service';
import { describeTransition } from './notification-messages';
import { NotificationsService } from './notifications.service';
import { WebhookOutboxService } from './webhook-outbox.service';

/**
 * Tells an organization's admins when its connection's state changes: once per transition, however
 * many instances or ticks see it. Each organization remembers the state its admins were last told
 * about (`notified_state`); moving it is a compare-and-set in the same transaction as the
 * notification and its webhook outbox entry, so exactly one evaluator wins and nothing is lost.
 * Runs on every connection event and from the scheduled check (for changes the clock makes).
 */
@Injectable()
export class ConnectionNotifier {
  private readonly logger = new Logger(ConnectionNotifier.name);

  constructor(
    private readonly states: ConnectionsReadModel,
    private readonly connections: ConnectionsService,
    private readonly notifications: NotificationsService,
    private readonly outbox: WebhookOutboxService,
    private readonly email: EmailOutboxService,
    private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Evaluates the organizations' states now; returns how many notifications were written. */
  async evaluate(organizationIds: string[], now = new Date()): Promise<number> {
    let written = 0;
    // A cheap pass first; only organizations whose state seems to have moved take a lock.
    for (const seen of await this.states.snapshots(organizationIds, now)) {
      if (seen.state === seen.notifiedState) continue;
      const notified = await this.dataSource.transaction(async (manager) => {
        // Lock the organization's connection and read its state again under the lock: two evaluators racing
        // on quick successive events (degraded, then restored) must not announce a stale state.
        if (!(await this.connections.lockForNotification(manager, seen.organizationId))) return null;
        const [snapshot] = await this.states.snapshots([seen.organizationId], now, manager);
        if (!snapshot || snapshot.state === snapshot.notifiedState) return null;
        if (!this.worthAnnouncing(snapshot, now)) return null;
        await this.connections.recordNotifiedState(manager, snapshot.organizationId, snapshot.state, now);
        const content = describeTransition(snapshot, snapshot.notifiedState, now, this.config.publicBaseUrl);
        if (!content) return null;
        await this.notifications.create(
          manager,
          { id: snapshot.organizationId, name: snapshot.organizationName },
          snapshot.state,
          snapshot.notifiedState,
          content,
          now,
        );
        return snapshot;
      });
      if (notified) {
        written += 1;
        this.logger.log(
          { orgId: notified.organizationId, state: notified.state, previous: notified.notifiedState },
          `Notified the admins of organization ${notified.organizationId}: connection ${notified.state}`,
        );
      }
    }
    if (written > 0) {
      // Detached, after the commit: delivery never runs inside a request or the check's transaction.
      void this.outbox.deliverDue();
      void this.email.deliverDue();
    }
    return written;
  }

  /**
   * A transient error is announced only once it has lasted ERROR_NOTICE_DELAY_MINUTES: a blip that
   * recovers by itself (or a refresh retried after its cooldown) must not page anyone twice. Until
   * then the state is left unannounced, and the next event or tick looks again.
   */
  private worthAnnouncing(snapshot: ConnectionSnapshot, now: Date): boolean {
    if (snapshot.state !== ConnectionState.Error) return true;
    const since = snapshot.lastErrorAt?.getTime() ?? now.getTime();
    return now.getTime() - since >= this.config.env.ERROR_NOTICE_DELAY_MINUTES * 60_000;
  }

  @OnAnyConnectionEvent()
  async onConnectionEvent(event: ConnectionEvent): Promise<void> {
    if (event.userId !== null) return; // per-user connections are not the organization's
    await this.evaluateQuietly(event.organizationId);
  }

  @OnEvent(OrganizationEvents.EpicClientChanged)
  async onRegistrationChanged(event: EpicClientChangedEvent): Promise<void> {
    await this.evaluateQuietly(event.organizationId);
  }

  private async evaluateQuietly(organizationId: string): Promise<void> {
    try {
      await this.evaluate([organizationId]);
    } catch (error) {
      this.logger.error(
        { err: error, orgId: organizationId },
        'Could not evaluate a connection state change',
      );
    }
  }
}
