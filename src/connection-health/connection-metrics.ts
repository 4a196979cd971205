import { Injectable, OnModuleInit } from '@nestjs/common';
import { Gauge } from 'prom-client';

import { MetricsService } from 'src/metrics/metrics.service';

import { CONNECTION_STATES } from 'src/connections/connections.types';
import { ScheduledCheckService } from './scheduled-check.service';
import { ConnectionsReadModel } from 'src/connections/connections.read-model';
import { WebhookOutboxService } from './webhook-outbox.service';

/** Gauges read from the database when Prometheus scrapes (no state kept between scrapes). */
@Injectable()
export class ConnectionMetrics implements OnModuleInit {
  constructor(
    private readonly metrics: MetricsService,
    private readonly states: ConnectionsReadModel,
    private readonly check: ScheduledCheckService,
    private readonly outbox: WebhookOutboxService,
  ) {}

  onModuleInit(): void {
    const registers = [this.metrics.registry];
    const states = this.states;
    const check = this.check;
    const outbox = this.outbox;
    new Gauge({
      name: 'epic_connect_connections',
      help: 'Organizations by Epic connection state',
      labelNames: ['state'],
      registers,
      async collect() {
        const counts = await states.counts();
        for (const state of CONNECTION_STATES) this.set({ state }, counts[state]);
      },
    });
    // One query serves both per-organization gauges: whichever is collected first reads it, the
    // other reuses it within the same scrape.
    let expiry: { at: number; rows: ReturnType<ConnectionsReadModel['secondsToExpiry']> } | null = null;
    const readExpiry = () => {
      if (!expiry || Date.now() - expiry.at > 1000) {
        expiry = { at: Date.now(), rows: states.secondsToExpiry() };
      }
      return expiry.rows;
    };
    new Gauge({
      name: 'epic_connect_access_token_seconds_to_expiry',
      help: 'Seconds until an organization connection access token expires (negative: expired); refreshed ones renew',
      labelNames: ['organization'],
      registers,
      async collect() {
        this.reset();
        for (const row of await readExpiry()) {
          this.set({ organization: row.organizationId }, row.accessTokenSeconds);
        }
      },
    });
    new Gauge({
      name: 'epic_connect_connection_seconds_to_end',
      help: 'Seconds until a connection stops working without a new sign-in (negative: ended); connections that refresh indefinitely are absent',
      labelNames: ['organization'],
      registers,
      async collect() {
        this.reset();
        for (const row of await readExpiry()) {
          if (row.endSeconds !== null) this.set({ organization: row.organizationId }, row.endSeconds);
        }
      },
    });
    new Gauge({
      name: 'epic_connect_notification_outbox',
      help: 'Webhook notification deliveries by status',
      labelNames: ['status'],
      registers,
      async collect() {
        const backlog = await outbox.backlog();
        this.set({ status: 'pending' }, backlog.pending);
        this.set({ status: 'failed' }, backlog.failed);
      },
    });
    new Gauge({
      name: 'epic_connect_connection_check_last_run_timestamp_seconds',
      help: 'When the scheduled connection check last started (0: never)',
      registers,
      async collect() {
        const last = await check.lastRun();
        this.set(last ? last.startedAt.getTime() / 1000 : 0);
      },
    });
  }
}
