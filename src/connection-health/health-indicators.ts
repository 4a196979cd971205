import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';

import { ClientKeysService } from 'src/client-keys/client-keys.service';
import { KEY_ENVIRONMENTS, SIGNING_ALGS, type ClientKeyView } from 'src/client-keys/client-keys.types';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { MailService } from 'src/mail/mail.service';

import { ScheduledCheckService } from './scheduled-check.service';
import { ConnectionsReadModel } from 'src/connections/connections.read-model';
import { WebhookOutboxService } from './webhook-outbox.service';

/** An outbox entry pending longer than this means the webhook has been failing for a while. */
const OUTBOX_STALE_SECONDS = 3600;
/** A key rotation step this late means the rotation job is not running (it runs every few minutes). */
const KEY_STEP_LATE_MS = 3600_000;

/** Terminus indicators for `/health` (detail for dashboards; `/health/ready` does not use them). */
@Injectable()
export class ConnectionHealthIndicators {
  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly check: ScheduledCheckService,
    private readonly states: ConnectionsReadModel,
    private readonly outbox: WebhookOutboxService,
    private readonly clientKeys: ClientKeysService,
    private readonly mailer: MailService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** The scheduled check: down when it has not run for two intervals (it should have). */
  async scheduler(now = new Date()): Promise<HealthIndicatorResult<'scheduler'>> {
    const indicator = this.indicators.check('scheduler');
    if (!this.check.enabled) return indicator.up({ enabled: false });
    const last = await this.check.lastRun();
    const interval = this.check.intervalMs(now);
    const details = {
      enabled: true,
      lastRunAt: last?.startedAt.toISOString() ?? null,
      lastOutcome: last?.outcome ?? null,
      lastCounts: last?.counts ?? null,
      nextRunAt: this.check.nextTickAfter(now).toISOString(),
      intervalSeconds: Math.round(interval / 1000),
    };
    // A fresh instance has had no chance yet: measure from its start.
    const since = last?.startedAt.getTime() ?? this.check.startedAt.getTime();
    const overdue = now.getTime() - since > 2 * interval;
    if (overdue) return indicator.down({ ...details, overdue: true });
    if (last?.outcome === 'failure') return indicator.degraded({ ...details, error: last.error });
    return indicator.up({ ...details, overdue: false });
  }

  /**
   * Outbox deliveries (webhook and email) waiting or parked, in total and per channel: degraded when
   * some failed (dead letters, for root admins to look at) or one waits longer than an hour.
   */
  async outboxBacklog(now = new Date()): Promise<HealthIndicatorResult<'notificationOutbox'>> {
    const indicator = this.indicators.check('notificationOutbox');
    const backlog = await this.outbox.backlog(now);
    const stale = (backlog.oldestPendingSeconds ?? 0) > OUTBOX_STALE_SECONDS;
    return backlog.failed > 0 || stale ? indicator.degraded({ ...backlog }) : indicator.up({ ...backlog });
  }

  /**
   * The SMTP server (only when email is configured): nodemailer's `verify()` (connect, TLS, login),
   * with a 5-second timeout, cached for a minute. Degraded, not down, when it fails: emails wait in
   * the outbox and are retried, and the instance serves everything else.
   */
  async mail(): Promise<HealthIndicatorResult<'mail'>> {
    const indicator = this.indicators.check('mail');
    const check = await this.mailer.check();
    return check.ok
      ? indicator.up({ checkedAt: check.checkedAt })
      : indicator.degraded({ checkedAt: check.checkedAt, problem: check.problem });
  }

  /**
   * Epic connections by state: always up. One organization's broken connection is its admins'
   * concern (they are notified), not a reason to page ops or to leave rotation.
   */
  async epicConnections(now = new Date()): Promise<HealthIndicatorResult<'epicConnections'>> {
    return this.indicators.check('epicConnections').up({ ...(await this.states.counts(now)) });
  }

  /**
   * The signing keys of private_key_jwt, both sets (sandbox and production), each under its
   * environment: degraded (still 200) when an algorithm of either set has no active key, or when a
   * scheduled rotation step of either is more than an hour late (the rotation job is not running:
   * a published key never starts signing, or an old one is never unpublished).
   */
  async signingKeys(now = new Date()): Promise<HealthIndicatorResult<'signingKeys'>> {
    const indicator = this.indicators.check('signingKeys');
    const keys = await this.clientKeys.list();
    const sets = KEY_ENVIRONMENTS.map((environment) =>
      keySetHealth(
        keys.filter((k) => k.environment === environment),
        this.config.env.CRON_ENABLED,
        now,
      ),
    );
    const details = Object.fromEntries(
      KEY_ENVIRONMENTS.map((environment, i) => [environment, sets[i].details]),
    );
    return sets.some((set) => set.degraded) ? indicator.degraded(details) : indicator.up(details);
  }
}

/** One environment's keys for `/health`: the active kid per algorithm, next, retiring, late steps. */
function keySetHealth(keys: ClientKeyView[], cronEnabled: boolean, now: Date) {
  const active = Object.fromEntries(
    SIGNING_ALGS.map((alg) => [alg, keys.find((k) => k.alg === alg && k.state === 'active')?.kid ?? null]),
  );
  const late = cronEnabled
    ? keys.filter((k) => k.nextStepAt && now.getTime() - k.nextStepAt.getTime() > KEY_STEP_LATE_MS)
    : [];
  const details = {
    active,
    next: keys.filter((k) => k.state === 'next').map((k) => ({ kid: k.kid, alg: k.alg })),
    retiring: keys.filter((k) => k.state === 'retiring').map((k) => ({ kid: k.kid, alg: k.alg })),
    lateSteps: late.map((k) => ({ kid: k.kid, step: k.nextStep, dueAt: k.nextStepAt!.toISOString() })),
  };
  const missing = Object.values(active).some((kid) => kid === null);
  return { details, degraded: missing || late.length > 0 };
}
