import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { CronJob, CronTime } from 'cron';
import { DataSource } from 'typeorm';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { ConnectionCandidate, ConnectionsReadModel } from 'src/connections/connections.read-model';
import { ConnectionsService } from 'src/connections/connections.service';
import { TokenStoreService } from 'src/connections/token-store.service';
import { DbLockService } from 'src/database/db-lock.service';
import { FhirErrorKind } from 'src/fhir-client/fhir-client.errors';
import { FhirClientService } from 'src/fhir-client/fhir-client.service';
import { MetricsService } from 'src/metrics/metrics.service';

import { ConnectionNotifier } from './connection-notifier.service';
import { OwnConnectionNoticesService } from './own-connection-notices.service';
import { RAN_OUT_REASON, SESSION_FINISHED_REASON } from './user-connection-endings';

export const CONNECTION_CHECK_JOB = 'connection-check';
/**
 * How long history is kept: run records, delivered and failed (parked) outbox entries, and
 * notifications (with their reads) and users' ended-connection notices.
 */
export const RETENTION = { runsDays: 30, deliveredDays: 30, failedDays: 30, notificationsDays: 180 };
/** Credentials examined per query: memory stays flat however many organizations there are. */
const PAGE_SIZE = 500;
/** Users' ran-out credentials ended per tick at most (pages of PAGE_SIZE); the rest wait for the next tick. */
const RUN_OUT_PAGES = 10;
/** How far back a tick makes sure every ended user credential has its notice (a crash may have lost one). */
const NOTICE_LOOKBACK_MS = 86_400_000;

export interface CheckCounts {
  /** Connections whose token or refresh token ends before the next tick plus the margin. */
  candidates: number;
  refreshed: number;
  /** Refreshes Epic refused for good (the connection now needs re-authentication). */
  reauthenticationRequired: number;
  /** Refreshes that failed transiently (tokens kept). */
  refreshFailed: number;
  notified: number;
  /** Users' credentials that ran out (no refresh refused) and were marked ended. */
  userConnectionsEnded: number;
  /** Users' ended credentials whose notice was missing (lost in a crash, or just ended) and was recorded. */
  userNoticesRecorded: number;
  /** Old run records, delivered and failed outbox entries and notifications removed. */
  swept: number;
}

export interface LastRun {
  startedAt: Date;
  finishedAt: Date | null;
  outcome: 'running' | 'success' | 'failure';
  counts: Partial<CheckCounts>;
  error: string | null;
}

/**
 * The scheduled connection check (CONNECTION_CHECK_CRON; off with CRON_ENABLED=false). Each tick,
 * on one instance only (an advisory lock), finds with indexed SQL the organization connections
 * whose token ends before the next tick plus the refresh margin and warning window, refreshes the
 * refreshable ones through FhirClient (CONNECTION_CHECK_CONCURRENCY at a time), re-evaluates the
 * state of all of them (notifying on changes), and records the run. The clock is a parameter.
 */
@Injectable()
export class ScheduledCheckService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ScheduledCheckService.name);
  private readonly cron: CronTime;
  private job?: CronJob;
  /** When this instance started: the scheduler is not overdue before it had a chance to run. */
  readonly startedAt = new Date();

  constructor(
    private readonly dataSource: DataSource,
    private readonly connections: ConnectionsReadModel,
    private readonly locks: DbLockService,
    private readonly fhir: FhirClientService,
    private readonly notifier: ConnectionNotifier,
    private readonly connectionsService: ConnectionsService,
    private readonly tokens: TokenStoreService,
    private readonly ownNotices: OwnConnectionNoticesService,
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.cron = new CronTime(config.env.CONNECTION_CHECK_CRON, 'UTC');
  }

  onApplicationBootstrap(): void {
    if (!this.config.env.CRON_ENABLED) return;
    this.job = CronJob.from({
      cronTime: this.config.env.CONNECTION_CHECK_CRON,
      timeZone: 'UTC',
      onTick: () => void this.tick(),
      start: true,
    });
    this.logger.log(
      { cron: this.config.env.CONNECTION_CHECK_CRON },
      `Connection check scheduled (${this.config.env.CONNECTION_CHECK_CRON}, UTC)`,
    );
  }

  onApplicationShutdown(): void {
    void this.job?.stop();
  }

  get enabled(): boolean {
    return this.config.env.CRON_ENABLED;
  }

  /** When the tick after `now` is due. */
  nextTickAfter(now: Date): Date {
    return this.cron.getNextDateFrom(now, 'UTC').toJSDate();
  }

  /** The time between two ticks around `now` (cron schedules can be uneven; this is the next gap). */
  intervalMs(now: Date): number {
    const next = this.nextTickAfter(now);
    return this.nextTickAfter(next).getTime() - next.getTime();
  }

  /**
   * One run of the check at `now`. Returns its counts, or null when another instance (or a
   * previous tick still running here) has it. Never rejects: a failure is logged and recorded.
   */
  async tick(now = new Date()): Promise<CheckCounts | null> {
    let counts: CheckCounts | null = null;
    try {
      await this.locks.tryRunExclusive(`scheduled:${CONNECTION_CHECK_JOB}`, async () => {
        counts = await this.recorded(now);
      });
    } catch (error) {
      this.logger.error({ err: error }, 'The connection check could not run');
    }
    return counts;
  }

  async lastRun(): Promise<LastRun | null> {
    const [row] = await this.dataSource.query<
      {
        started_at: Date;
        finished_at: Date | null;
        outcome: LastRun['outcome'];
        counts: Partial<CheckCounts>;
        error: string | null;
      }[]
    >(
      `SELECT started_at, finished_at, outcome, counts, error FROM scheduled_run
        WHERE job = $1 ORDER BY started_at DESC LIMIT 1`,
      [CONNECTION_CHECK_JOB],
    );
    if (!row) return null;
    return {
      startedAt: new Date(row.started_at),
      finishedAt: row.finished_at ? new Date(row.finished_at) : null,
      outcome: row.outcome,
      counts: row.counts,
      error: row.error,
    };
  }

  private async recorded(now: Date): Promise<CheckCounts> {
    const started = performance.now();
    const [run] = await this.dataSource.query<{ id: string }[]>(
      `INSERT INTO scheduled_run (job, started_at) VALUES ($1, $2) RETURNING id`,
      [CONNECTION_CHECK_JOB, now],
    );
    try {
      const counts = await this.check(now);
      await this.dataSource.query(
        `UPDATE scheduled_run SET finished_at = $2, outcome = 'success', counts = $3::jsonb WHERE id = $1`,
        [run.id, new Date(now.getTime() + (performance.now() - started)), JSON.stringify(counts)],
      );
      this.metrics.connectionCheck('success', (performance.now() - started) / 1000);
      this.logger.log({ ...counts }, 'Connection check finished');
      return counts;
    } catch (error) {
      await this.dataSource.query(
        `UPDATE scheduled_run SET finished_at = $2, outcome = 'failure', error = $3 WHERE id = $1`,
        [
          run.id,
          new Date(now.getTime() + (performance.now() - started)),
          (error as Error).message.slice(0, 500),
        ],
      );
      this.metrics.connectionCheck('failure', (performance.now() - started) / 1000);
      throw error;
    }
  }

  private async check(now: Date): Promise<CheckCounts> {
    const nextTick = this.nextTickAfter(now);
    const refreshBefore = new Date(nextTick.getTime() + this.config.env.TOKEN_REFRESH_MARGIN_SECONDS * 1000);
    const lookBefore = new Date(
      Math.max(refreshBefore.getTime(), nextTick.getTime() + this.config.env.EXPIRY_WARNING_MINUTES * 60_000),
    );
    const counts: CheckCounts = {
      swept: 0,
      candidates: 0,
      refreshed: 0,
      reauthenticationRequired: 0,
      refreshFailed: 0,
      notified: 0,
      userConnectionsEnded: 0,
      userNoticesRecorded: 0,
    };

    // Keyset pages over the two indexed ends: the access token's (expires_at) and, where known,
    // the refresh token's (refresh_expires_at).
    let after: { expiresAt: Date; id: string } | null = null;
    // A refreshed credential moves later in the order and may come round again on a later page
    // (tokens shorter-lived than the look-ahead): each is handled once per tick.
    const seen = new Set<string>();
    for (;;) {
      const rows = await this.connections.candidates(refreshBefore, lookBefore, after, PAGE_SIZE);
      if (rows.length === 0) break;
      const page = rows.filter((c) => !seen.has(c.id));
      for (const c of page) seen.add(c.id);
      counts.candidates += page.length;
      // Refreshable and due: refresh. Ended without a refresh token: the refresher marks it dead.
      const due = page.filter((c) => (c.refreshable ? c.expiresAt < refreshBefore : c.expiresAt <= now));
      await this.refreshAll(due, now, counts);
      counts.notified += await this.notifier.evaluate([...new Set(page.map((c) => c.organizationId))], now);
      const last = rows[rows.length - 1];
      after = { expiresAt: last.expiresAt, id: last.id };
      if (rows.length < PAGE_SIZE) break;
    }
    // Connections whose admins were told of a problem, or which have a recorded failure, are
    // re-evaluated too (few; partial indexes; paged by id): a missed event must not leave a stale notice.
    let afterId = '00000000-0000-0000-0000-000000000000';
    for (;;) {
      const flagged = await this.connections.flagged(afterId, PAGE_SIZE);
      if (flagged.length === 0) break;
      counts.notified += await this.notifier.evaluate(flagged, now);
      afterId = flagged[flagged.length - 1];
      if (flagged.length < PAGE_SIZE) break;
    }
    counts.userConnectionsEnded = await this.endRanOutUserConnections(now);
    counts.userNoticesRecorded = await this.recordMissingUserNotices(now);
    counts.swept = await this.sweep(now);
    return counts;
  }

  /**
   * Users' credentials that simply ran out are marked ended through Connections, which announces
   * `connection.lost`. A renewable one whose refresh token's announced end passed is a lost
   * connection: the user's notice and email follow. One that could never be renewed (no refresh
   * token, its access token expired) is a finished session: ended with SESSION_FINISHED_REASON and
   * announced with code `session_finished`, no notice, no email. Keyset pages over a partial index,
   * at most RUN_OUT_PAGES per tick.
   */
  private async endRanOutUserConnections(now: Date): Promise<number> {
    let ended = 0;
    let after: { endsAt: Date; id: string } | null = null;
    for (let page = 0; page < RUN_OUT_PAGES; page += 1) {
      const rows = await this.tokens.ranOutUserCredentials(now, after, PAGE_SIZE);
      if (rows.length === 0) break;
      ended += await this.connectionsService.endRanOutUserConnections(
        rows.map((r) => r.id),
        now,
        { ranOut: RAN_OUT_REASON, finished: SESSION_FINISHED_REASON },
      );
      const last = rows[rows.length - 1];
      after = { endsAt: last.endsAt, id: last.id };
      if (rows.length < PAGE_SIZE) break;
    }
    return ended;
  }

  /**
   * Notices are recorded by listeners after the ending commits; a crash in between would lose one.
   * Every tick records the notice of any user credential that ended in the last day and has none
   * (idempotent: unique on the credential and its end), so a lost one comes at the next tick.
   */
  private async recordMissingUserNotices(now: Date): Promise<number> {
    const since = new Date(now.getTime() - NOTICE_LOOKBACK_MS);
    let recorded = 0;
    let after: { endedAt: Date; id: string } | null = null;
    for (;;) {
      const rows = await this.tokens.userCredentialsEndedSince(since, after, PAGE_SIZE);
      if (rows.length === 0) break;
      recorded += await this.ownNotices.record(rows);
      const last = rows[rows.length - 1];
      after = { endedAt: last.endedAt!, id: last.id };
      if (rows.length < PAGE_SIZE) break;
    }
    return recorded;
  }

  /** Deletes history past its retention (RETENTION), so tables and unread counts stay small. */
  private async sweep(now: Date): Promise<number> {
    const before = (days: number) => new Date(now.getTime() - days * 86_400_000);
    let removed = 0;
    for (const [sql, date] of [
      [
        `DELETE FROM scheduled_run WHERE job = '${CONNECTION_CHECK_JOB}' AND started_at < $1`,
        before(RETENTION.runsDays),
      ],
      [
        `DELETE FROM notification_outbox WHERE status = 'delivered' AND delivered_at < $1`,
        before(RETENTION.deliveredDays),
      ],
      // Parked deliveries too: an email's payload holds its recipient's address and unsubscribe link.
      // `next_attempt_at` of a parked entry is its last attempt plus the backoff.
      [
        `DELETE FROM notification_outbox WHERE status = 'failed' AND next_attempt_at < $1`,
        before(RETENTION.failedDays),
      ],
      [`DELETE FROM notification WHERE created_at < $1`, before(RETENTION.notificationsDays)],
      [`DELETE FROM user_connection_notice WHERE created_at < $1`, before(RETENTION.notificationsDays)],
    ] as const) {
      const [, count] = await this.dataSource.query<[unknown[], number]>(sql, [date]);
      removed += count;
    }
    return removed;
  }

  /** Refreshes with bounded concurrency; failures are classified and recorded by the refresher. */
  private async refreshAll(due: ConnectionCandidate[], now: Date, counts: CheckCounts): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < due.length) {
        const candidate = due[next++];
        const outcome = await this.fhir.refreshOrganizationConnection(
          {
            id: candidate.id,
            organizationId: candidate.organizationId,
            userId: null,
            version: candidate.version,
            refreshable: candidate.refreshable,
          },
          now,
        );
        if (outcome === 'refreshed') counts.refreshed += 1;
        else if (outcome === FhirErrorKind.ReauthenticationRequired) counts.reauthenticationRequired += 1;
        else if (outcome === FhirErrorKind.Unavailable) counts.refreshFailed += 1;
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(this.config.env.CONNECTION_CHECK_CONCURRENCY, due.length) }, worker),
    );
  }
}
