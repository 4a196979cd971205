import { Inject, Injectable, Logger } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { DataSource } from 'typeorm';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { ConnectionEvent, ConnectionEvents } from 'src/epic-auth/epic-auth.events';
import { EpicClientChangedEvent, OrganizationEvents } from 'src/organizations/organizations.events';

import { ConnectionStatesService } from './connection-states.service';
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
    private readonly states: ConnectionStatesService,
    private readonly notifications: NotificationsService,
    private readonly outbox: WebhookOutboxService,
    private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Evaluates the organizations' states now; returns how many notifications were written. */
  async evaluate(organizationIds: string[], now = new Date()): Promise<number> {
    let written = 0;
    for (const snapshot of await this.states.snapshots(organizationIds, now)) {
      if (snapshot.state === snapshot.notifiedState) continue;
      const content = describeTransition(snapshot, snapshot.notifiedState, now, this.config.publicBaseUrl);
      const wrote = await this.dataSource.transaction(async (manager) => {
        // UPDATE answers [rows, count] through TypeORM's query(); 0: another evaluator won.
        const [, moved] = await manager.query<[unknown[], number]>(
          `UPDATE organization SET notified_state = $2, notified_state_at = $3
            WHERE id = $1 AND notified_state IS NOT DISTINCT FROM $4`,
          [snapshot.organizationId, snapshot.state, now, snapshot.notifiedState],
        );
        if (moved === 0 || !content) return false;
        await this.notifications.create(
          manager,
          { id: snapshot.organizationId, name: snapshot.organizationName },
          snapshot.state,
          snapshot.notifiedState,
          content,
          now,
        );
        return true;
      });
      if (wrote) {
        written += 1;
        this.logger.log(
          { orgId: snapshot.organizationId, state: snapshot.state, previous: snapshot.notifiedState },
          `Notified the admins of organization ${snapshot.organizationId}: connection ${snapshot.state}`,
        );
      }
    }
    if (written > 0) void this.outbox.deliverDue();
    return written;
  }

  @OnEvent(ConnectionEvents.TokenRefreshed)
  @OnEvent(ConnectionEvents.Lost)
  @OnEvent(ConnectionEvents.Degraded)
  @OnEvent(ConnectionEvents.Restored)
  @OnEvent(ConnectionEvents.Connected)
  @OnEvent(ConnectionEvents.Disconnected)
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
