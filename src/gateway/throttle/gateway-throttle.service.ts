import { randomUUID } from 'node:crypto';

import { Inject, Injectable, Logger, OnModuleDestroy, Optional } from '@nestjs/common';
import { isUUID } from 'class-validator';
import { DataSource } from 'typeorm';

import { AuditActor, AuditService } from 'src/audit/audit.service';
import { DomainError, ErrorCode, FieldErrors } from 'src/common/errors/domain-error';
import { validationFailed } from 'src/common/errors/field-errors';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { OrganizationsService } from 'src/organizations/organizations.service';
import { Role } from 'src/users/user.types';

import { GatewayBudgetRepository } from './gateway-budget.repository';
import { GatewayLimitsRepository, LimitsOverride } from './gateway-limits.repository';
import { GATEWAY_THROTTLE_METRICS, GatewayThrottleMetrics } from './gateway-throttle.metrics';
import { GateLimits, GateSettings, OrganizationGate, Release } from './organization-gate';
import { CONCURRENCY_RANGE, LIMITS_CACHE_MS, RATE_RANGE, upstreamPauseSeconds } from './throttle-policy';

/** A root admin's override as stored (null: that limit is the default), for the consoles. */
export type { LimitsOverride } from './gateway-limits.repository';

/** Who changes the limits: a signed-in user (AuthUser fits), audited by id and email. */
export type LimitsActor = AuditActor & { role: Role };

/** A change to an organization's override: a number sets it, null restores the default, absent keeps it. */
export interface LimitsChange {
  ratePerSecond?: number | null;
  concurrency?: number | null;
}

const NOT_FOUND = 'Organization not found';

/**
 * Throttles the FHIR gateway's traffic per organization, shared by every instance: at most
 * `concurrency` requests in flight and `ratePerSecond` started per second for each organization
 * (GATEWAY_CONCURRENCY and GATEWAY_RATE_PER_SECOND, or a root admin's override), so one busy
 * client cannot exhaust the EHR server's patience for its whole organization.
 *
 * Why leases: a shared counter hit per request would cost a database write per request. Each
 * instance leases rate tokens in batches of about 10% of the per-second rate from a token bucket
 * in `gateway_budget` (reserving ahead of the refill when it is short, so a batch costs one
 * statement even under contention), and concurrency slots as a lease renewed once a second
 * (shares follow demand), all in one statement (GatewayBudgetRepository.lease). An organization's
 * busy instances send together about rate / batch (≈ 10) token leases a second plus a heartbeat
 * each, whatever the request rate. Accuracy (README.md): over any span of T seconds, N instances
 * start at most rate·T + (N + 2)·batch requests of an organization (±10% over 4 s at the defaults
 * with two instances); slots never exceed the limit while instances reach the database.
 *
 * @see src/gateway/throttle/README.md
 */
@Injectable()
export class GatewayThrottleService implements OnModuleDestroy {
  private readonly logger = new Logger(GatewayThrottleService.name);
  /** This process in the organizations' shared slot leases. */
  private readonly instanceId = randomUUID();
  private readonly gates = new Map<string, OrganizationGate>();
  private readonly limitsCache = new Map<string, { limits: GateLimits; at: number }>();
  private readonly defaults: GateLimits;
  private readonly settings: GateSettings;
  private readonly defaultPauseSeconds: number;
  private closed = false;

  constructor(
    private readonly dataSource: DataSource,
    private readonly budget: GatewayBudgetRepository,
    private readonly overrides: GatewayLimitsRepository,
    private readonly organizations: OrganizationsService,
    private readonly audit: AuditService,
    @Inject(APP_CONFIG) config: AppConfig,
    @Optional() @Inject(GATEWAY_THROTTLE_METRICS) private readonly metrics?: GatewayThrottleMetrics,
  ) {
    const env = config.env;
    this.defaults = { ratePerSecond: env.GATEWAY_RATE_PER_SECOND, concurrency: env.GATEWAY_CONCURRENCY };
    this.settings = { queueMax: env.GATEWAY_QUEUE_MAX, queueWaitMs: env.GATEWAY_QUEUE_WAIT_MS };
    this.defaultPauseSeconds = env.GATEWAY_UPSTREAM_PAUSE_SECONDS;
  }

  /**
   * Waits in a bounded per-organization queue (at most GATEWAY_QUEUE_MAX waiting, at most
   * GATEWAY_QUEUE_WAIT_MS) for a concurrency slot and a rate token; resolves with a release
   * function (call exactly once when the upstream response ends), or rejects with
   * DomainError(ErrorCode.RateLimited, …, { retryAfterSeconds }).
   */
  acquire(organizationId: string): Promise<Release> {
    if (!isUUID(organizationId)) {
      return Promise.reject(new DomainError(ErrorCode.NotFound, NOT_FOUND));
    }
    if (this.closed) {
      return Promise.reject(
        new DomainError(ErrorCode.RateLimited, 'The service is restarting. Retry shortly.', {
          organizationId,
          retryAfterSeconds: 1,
        }),
      );
    }
    return this.gate(organizationId).acquire();
  }

  /**
   * The upstream answered 429 (Retry-After seconds, or a default): new requests of that
   * organization wait or are refused until then, on every instance (here at once, elsewhere at
   * their next lease, within half a second while they are busy). Never rejects: a pause that
   * cannot be stored is logged and still holds on this instance.
   */
  async upstreamThrottled(organizationId: string, retryAfterSeconds: number | null): Promise<void> {
    if (!isUUID(organizationId) || this.closed) return;
    const seconds = upstreamPauseSeconds(retryAfterSeconds, this.defaultPauseSeconds);
    this.gate(organizationId).pause(Date.now() + seconds * 1000);
    this.metrics?.upstreamThrottled(organizationId, seconds);
    this.logger.warn(
      { orgId: organizationId, pauseSeconds: seconds },
      'The EHR server answered 429: pausing',
    );
    try {
      const pausedMs = await this.budget.pause(organizationId, seconds);
      // Another instance may have paused it for longer.
      if (!this.closed) this.gates.get(organizationId)?.pause(Date.now() + pausedMs);
    } catch (error) {
      this.logger.error(
        { err: error, orgId: organizationId },
        'Could not share the pause with other instances',
      );
    }
  }

  /** Limits in force for an organization (defaults or the root admin's override), cached briefly. */
  async limits(organizationId: string): Promise<GateLimits> {
    if (!isUUID(organizationId)) throw new DomainError(ErrorCode.NotFound, NOT_FOUND);
    const now = Date.now();
    const leased = this.gates.get(organizationId)?.limits(now);
    if (leased) return leased;
    const cached = this.limitsCache.get(organizationId);
    if (cached && now - cached.at < LIMITS_CACHE_MS) return cached.limits;
    return this.remember(organizationId, this.inForce(await this.overrides.find(organizationId)));
  }

  /**
   * The root admin's override of an organization's limits as stored, read now (nulls: the
   * defaults apply). Unlike `limits`, it tells an override equal to a default from no override.
   */
  async override(organizationId: string): Promise<LimitsOverride> {
    if (!isUUID(organizationId)) throw new DomainError(ErrorCode.NotFound, NOT_FOUND);
    return this.overrides.find(organizationId);
  }

  /**
   * Sets or clears a root admin's override of an organization's limits (audited
   * `gateway-limits.changed`). Every instance applies it at its next lease.
   */
  async setOverride(actor: LimitsActor, organizationId: string, change: LimitsChange): Promise<void> {
    if (actor.role !== Role.RootAdmin) {
      throw new DomainError(
        ErrorCode.Forbidden,
        "Only a root admin can change an organization's gateway limits.",
        {
          organizationId,
        },
      );
    }
    const problems = limitProblems(change);
    if (problems) throw validationFailed(problems);
    if (!isUUID(organizationId)) throw new DomainError(ErrorCode.NotFound, NOT_FOUND);
    const organization = await this.organizations.get(organizationId);
    const after = await this.dataSource.transaction(async (manager) => {
      const before = await this.overrides.find(organizationId, manager, true);
      const next: LimitsOverride = {
        ratePerSecond: change.ratePerSecond === undefined ? before.ratePerSecond : change.ratePerSecond,
        concurrency: change.concurrency === undefined ? before.concurrency : change.concurrency,
      };
      if (next.ratePerSecond === before.ratePerSecond && next.concurrency === before.concurrency) return next;
      await this.overrides.save(organizationId, next, actor.id, manager);
      await this.audit.record(
        {
          actor,
          organization: { id: organization.id, name: organization.name },
          action: 'gateway-limits.changed',
          detail: { before, after: next, defaults: this.defaults },
        },
        manager,
      );
      return next;
    });
    const limits = this.remember(organizationId, this.inForce(after));
    this.gates.get(organizationId)?.setLimits(limits);
  }

  /** Refuses what waits and gives this instance's slot leases back, while the database is still open. */
  async onModuleDestroy(): Promise<void> {
    this.closed = true;
    const gates = [...this.gates.values()];
    this.gates.clear();
    const leased = await Promise.all(gates.map(async (g) => ((await g.close()) ? g.organizationId : null)));
    try {
      await this.budget.releaseSlots(
        this.instanceId,
        leased.filter((id): id is string => id !== null),
      );
    } catch (error) {
      // They lapse by themselves within the lease TTL.
      this.logger.warn({ err: error }, 'Could not give the gateway slot leases back');
    }
  }

  private gate(organizationId: string): OrganizationGate {
    const existing = this.gates.get(organizationId);
    if (existing) return existing;
    const gate: OrganizationGate = new OrganizationGate(organizationId, this.defaults, this.settings, {
      lease: (request) => this.budget.lease(organizationId, this.instanceId, this.defaults, request),
      queued: () => this.metrics?.queued(organizationId),
      throttled: (reason) => this.metrics?.throttled(organizationId, reason),
      leaseFailed: (error) => {
        if (!(error instanceof DomainError)) {
          this.logger.error({ err: error, orgId: organizationId }, 'Gateway throttle lease failed');
        }
      },
      idle: () => {
        if (this.gates.get(organizationId) === gate) this.gates.delete(organizationId);
      },
    });
    this.gates.set(organizationId, gate);
    return gate;
  }

  private inForce(override: LimitsOverride): GateLimits {
    return {
      ratePerSecond: override.ratePerSecond ?? this.defaults.ratePerSecond,
      concurrency: override.concurrency ?? this.defaults.concurrency,
    };
  }

  private remember(organizationId: string, limits: GateLimits): GateLimits {
    const now = Date.now();
    if (this.limitsCache.size > 1000) {
      for (const [id, entry] of this.limitsCache) {
        if (now - entry.at >= LIMITS_CACHE_MS) this.limitsCache.delete(id);
      }
    }
    this.limitsCache.set(organizationId, { limits, at: now });
    return limits;
  }
}

/** The field errors of a change, or undefined: whole numbers in range, or null for the default. */
function limitProblems(change: LimitsChange): FieldErrors | undefined {
  const problems: FieldErrors = {};
  const check = (field: keyof LimitsChange, range: { min: number; max: number }, unit: string): void => {
    const value = change[field];
    if (value === undefined || value === null) return;
    if (!Number.isInteger(value) || value < range.min || value > range.max) {
      problems[field] = [
        `${field} must be a whole number of ${unit} from ${range.min} to ${range.max}, or null for the default`,
      ];
    }
  };
  check('ratePerSecond', RATE_RANGE, 'requests per second');
  check('concurrency', CONCURRENCY_RANGE, 'requests in flight');
  return Object.keys(problems).length > 0 ? problems : undefined;
}
