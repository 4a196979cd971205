import { DomainError, ErrorCode } from 'src/common/errors/domain-error';

import type { LeaseRequest, LeaseResult } from './gateway-budget.repository';
import type { ThrottleRejection } from './gateway-throttle.metrics';
import {
  ArrivalRate,
  batchSize,
  HEARTBEAT_MS,
  LIMITS_CACHE_MS,
  MAX_LEASE_DELAY_MS,
  nextLeaseDelayMs,
  retryAfterSeconds,
  SLOT_LEASE_TTL_MS,
  SLOT_RETRY_MS,
  TOKEN_TTL_MS,
  tokensToLease,
} from './throttle-policy';

/** Ends a request's hold on its slot; call exactly once (later calls do nothing). */
export type Release = () => void;

export interface GateLimits {
  ratePerSecond: number;
  concurrency: number;
}

export interface GateSettings {
  /** Requests that may wait at once on this instance; one more is refused at once. */
  queueMax: number;
  /** How long a request may wait for a slot and a token before it is refused. */
  queueWaitMs: number;
}

/** What the gate needs from outside: the shared budget, and where to report. */
export interface GateDeps {
  lease(request: LeaseRequest): Promise<LeaseResult>;
  queued(): void;
  throttled(reason: ThrottleRejection): void;
  /** A lease failed: the requests waiting are rejected with `error`. */
  leaseFailed(error: unknown): void;
  /** Nothing waits, runs, is paused or is leased any more: the gate may be dropped. */
  idle(): void;
}

interface Waiter {
  deadline: number;
  resolve: (release: Release) => void;
  reject: (error: unknown) => void;
}

/** A first-in first-out queue whose shift is O(1) (the queue can hold thousands). */
class Fifo<T> {
  private items: T[] = [];
  private start = 0;

  get size(): number {
    return this.items.length - this.start;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.size > 0 ? this.items[this.start] : undefined;
  }

  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.items[this.start++];
    if (this.start > 1024 && this.start * 2 > this.items.length) {
      this.items = this.items.slice(this.start);
      this.start = 0;
    }
    return item;
  }
}

const MESSAGES: Record<ThrottleRejection | 'closing', string> = {
  paused:
    'The EHR server asked this organization to slow down: its requests are paused. Retry after the time given.',
  queue_full: 'Too many requests for this organization are waiting. Retry after the time given.',
  queue_timeout:
    'Too many requests for this organization: this one waited too long. Retry after the time given.',
  closing: 'The service is restarting. Retry shortly.',
};

/** After a failed lease, the next one waits this long (the requests waiting were refused). */
const FAILED_LEASE_BACKOFF_MS = 250;

/**
 * One organization's gate on one instance: requests wait here (first come, first served) for a
 * concurrency slot and a rate token, both leased in batches from the organization's shared
 * budget (GatewayBudgetRepository.lease), so most requests start without a database statement.
 *
 * A lease is sent when a waiting request finds no token (for at most one batch, possibly reserved
 * ahead of the refill: those requests then start when it is paid for), when this instance holds
 * fewer slots than its fair share, to give slots back, when a contended slot turn ends, and as a
 * heartbeat (every HEARTBEAT_MS while the database holds a lease of this instance), which renews
 * the slot lease and brings the pause and limits set elsewhere. Never more than one lease at a
 * time per organization and instance.
 */
export class OrganizationGate {
  private ratePerSecond: number;
  private concurrency: number;
  private limitsAt = -Infinity;

  /** Tokens held, usable from tokensValidAt (a reservation is paid by then) until tokensExpireAt. */
  private tokens = 0;
  private tokensValidAt = 0;
  private tokensExpireAt = 0;
  /** Slots this instance may fill, and until when (its lease lapses unless renewed). */
  private slotTarget = 0;
  private slotsExpireAt = 0;
  /** This instance's fair share (what it could have if the others gave back what they owe). */
  private fairShare = 0;
  /** Slots the database holds for this instance. */
  private slotsHeld = 0;
  /** Whether the database holds an entry of this instance (slots or demand): heartbeats renew it. */
  private registered = false;
  private inFlight = 0;
  private pausedUntil = 0;
  private readonly waiters = new Fifo<Waiter>();

  private leasing = false;
  /** The lease under way, if any (close() waits for it). */
  private running: Promise<void> | undefined;
  private lastLeaseAt = -Infinity;
  private nextTokenLeaseAt = 0;
  /** When shares pass on, if this instance got less than its demand (Infinity: it got all of it). */
  private nextTurnAt = Infinity;
  /** The most requests running plus waiting since the last lease: the demand a heartbeat reports. */
  private peakDemand = 0;
  private readonly arrivals = new ArrivalRate();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private closed = false;

  constructor(
    readonly organizationId: string,
    defaults: GateLimits,
    private readonly settings: GateSettings,
    private readonly deps: GateDeps,
  ) {
    this.ratePerSecond = defaults.ratePerSecond;
    this.concurrency = defaults.concurrency;
  }

  /** Resolves when the request may start, or rejects with 429 (DomainError RATE_LIMITED). */
  acquire(): Promise<Release> {
    if (this.closed) return Promise.reject(this.refusal('closing', Date.now()));
    const now = Date.now();
    this.arrivals.record(now);
    this.expire(now);
    if (this.pausedUntil - now > this.settings.queueWaitMs) return this.refuse('paused', now);
    if (this.waiters.size === 0 && this.canStart(now)) return Promise.resolve(this.start());
    if (this.waiters.size >= this.settings.queueMax) return this.refuse('queue_full', now);
    return new Promise<Release>((resolve, reject) => {
      this.waiters.push({ deadline: now + this.settings.queueWaitMs, resolve, reject });
      this.deps.queued();
      this.notePeak();
      this.pump();
    });
  }

  /** The upstream server asked to slow down: nothing starts before `until` (ms); held tokens go. */
  pause(until: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, until);
    this.tokens = 0;
    this.pump();
  }

  /** The limits the last lease applied, if recent. */
  limits(now: number): GateLimits | undefined {
    return now - this.limitsAt < LIMITS_CACHE_MS
      ? { ratePerSecond: this.ratePerSecond, concurrency: this.concurrency }
      : undefined;
  }

  /** New limits set on this instance: they apply here at once, elsewhere at the next lease. */
  setLimits(limits: GateLimits): void {
    this.ratePerSecond = limits.ratePerSecond;
    this.concurrency = limits.concurrency;
    this.limitsAt = Date.now();
    this.slotTarget = Math.min(this.slotTarget, limits.concurrency);
    this.tokens = Math.min(this.tokens, batchSize(limits.ratePerSecond));
    this.pump();
  }

  /**
   * Refuses the requests waiting, stops every timer and waits for a lease under way; says whether
   * the database may still hold a slot lease of this instance (to give back).
   */
  async close(): Promise<boolean> {
    this.closed = true;
    this.clearTimer();
    const now = Date.now();
    for (let w = this.waiters.shift(); w; w = this.waiters.shift()) w.reject(this.refusal('closing', now));
    await this.running;
    return this.registered || this.slotsHeld > 0;
  }

  private canStart(now: number): boolean {
    return (
      now >= this.pausedUntil &&
      this.tokens >= 1 &&
      now >= this.tokensValidAt &&
      this.inFlight < this.slotTarget &&
      now < this.slotsExpireAt
    );
  }

  private start(): Release {
    this.tokens -= 1;
    this.inFlight += 1;
    this.notePeak();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight -= 1;
      this.pump();
    };
  }

  private expire(now: number): void {
    if (this.tokens > 0 && now >= this.tokensExpireAt) this.tokens = 0;
  }

  private notePeak(): void {
    this.peakDemand = Math.max(this.peakDemand, this.inFlight + this.waiters.size);
  }

  /** Times out, starts what can start, leases if due, and sets the timer for what comes next. */
  private pump(): void {
    if (this.closed) return;
    const now = Date.now();
    this.expire(now);
    for (let w = this.waiters.peek(); w && w.deadline <= now; w = this.waiters.peek()) {
      this.waiters.shift();
      this.deps.throttled('queue_timeout');
      w.reject(this.refusal('queue_timeout', now));
    }
    // Those whose wait ends before the pause does are told now, with the pause's Retry-After.
    for (let w = this.waiters.peek(); w && w.deadline < this.pausedUntil; w = this.waiters.peek()) {
      this.waiters.shift();
      this.deps.throttled('paused');
      w.reject(this.refusal('paused', now));
    }
    for (let w = this.waiters.peek(); w && this.canStart(now); w = this.waiters.peek()) {
      this.waiters.shift();
      w.resolve(this.start());
    }
    if (!this.leasing && this.leaseDueAt(now) <= now) this.lease(now);
    this.schedule(now);
    if (this.isIdle(now)) this.deps.idle();
  }

  /** When the next lease is due (Infinity: none is needed). */
  private leaseDueAt(now: number): number {
    const waiting = this.waiters.size;
    const paused = now < this.pausedUntil;
    let due = Infinity;
    if (waiting > 0 && !paused) {
      if (this.tokens < 1) due = Math.min(due, this.nextTokenLeaseAt);
      // Below the fair share while others owe slots back, or the slot lease lapsed: ask again soon.
      const lapsed = now >= this.slotsExpireAt;
      if (lapsed || (this.inFlight >= this.slotTarget && this.slotTarget < this.fairShare)) {
        due = Math.min(due, this.lastLeaseAt + SLOT_RETRY_MS);
      }
    }
    if (this.slotsHeld > Math.max(this.inFlight, this.slotTarget)) {
      due = Math.min(due, this.lastLeaseAt + SLOT_RETRY_MS); // give slots back
    }
    if (this.registered) due = Math.min(due, this.lastLeaseAt + HEARTBEAT_MS, this.nextTurnAt);
    return due;
  }

  private lease(now: number): void {
    const waiting = this.waiters.size;
    const wantTokens =
      waiting > 0 && this.tokens < 1 && now >= this.pausedUntil && now >= this.nextTokenLeaseAt;
    const request: LeaseRequest = {
      want: wantTokens
        ? tokensToLease(waiting, this.arrivals.perSecond(now), batchSize(this.ratePerSecond))
        : 0,
      demand: Math.max(this.peakDemand, this.inFlight + waiting),
      inFlight: this.inFlight,
    };
    this.peakDemand = this.inFlight + waiting;
    this.leasing = true;
    this.lastLeaseAt = now;
    this.running = this.runLease(request, now);
  }

  private async runLease(request: LeaseRequest, sentAt: number): Promise<void> {
    try {
      const result = await this.deps.lease(request);
      if (!this.closed) this.apply(request, result, sentAt);
    } catch (error) {
      if (!this.closed) this.fail(error);
    } finally {
      this.leasing = false;
      this.running = undefined;
      this.pump();
    }
  }

  private apply(request: LeaseRequest, result: LeaseResult, sentAt: number): void {
    const now = Date.now();
    this.ratePerSecond = result.ratePerSecond;
    this.concurrency = result.concurrency;
    this.limitsAt = now;
    if (result.granted > 0) {
      // Leased only when none were held: these are the only tokens, usable once paid for.
      this.tokens = result.granted;
      this.tokensValidAt = now + result.validInMs;
      this.tokensExpireAt = this.tokensValidAt + TOKEN_TTL_MS;
    }
    if (request.want > 0) {
      this.nextTokenLeaseAt = now + nextLeaseDelayMs(request.want, result.granted, result.ratePerSecond);
    }
    this.slotTarget = result.slotTarget;
    this.slotsHeld = result.slots;
    // Counted from when the lease was sent: the database's lease ends no earlier than this.
    this.slotsExpireAt = sentAt + SLOT_LEASE_TTL_MS;
    this.fairShare = result.slotShare;
    // Contended: the seats that proportional shares leave over change hands when the turn ends.
    this.nextTurnAt = result.slotShare < request.demand ? now + result.turnLeftMs + 1 : Infinity;
    this.registered = request.demand > 0 || request.inFlight > 0;
    if (result.pausedMs > 0) this.pausedUntil = Math.max(this.pausedUntil, now + result.pausedMs);
    this.lastLeaseAt = now;
  }

  private fail(error: unknown): void {
    this.deps.leaseFailed(error);
    for (let w = this.waiters.shift(); w; w = this.waiters.shift()) w.reject(error);
    this.nextTokenLeaseAt = Date.now() + FAILED_LEASE_BACKOFF_MS;
  }

  private schedule(now: number): void {
    let at = this.leasing ? Infinity : this.leaseDueAt(now);
    const head = this.waiters.peek();
    if (head) {
      at = Math.min(at, head.deadline);
      // A reservation becomes usable.
      if (this.tokens >= 1 && this.tokensValidAt > now) at = Math.min(at, this.tokensValidAt);
    }
    // At a pause's end: the waiters go on, or the gate finds itself idle.
    if (this.pausedUntil > now) at = Math.min(at, this.pausedUntil);
    if (at === this.timerAt) return;
    this.clearTimer();
    if (at === Infinity) return;
    this.timerAt = at;
    // Bounded so a clock jump cannot park the gate; unref: never keeps the process (or Jest) alive.
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = Infinity;
        this.pump();
      },
      Math.min(Math.max(0, at - now), MAX_LEASE_DELAY_MS * 5),
    );
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private isIdle(now: number): boolean {
    return (
      !this.leasing &&
      this.waiters.size === 0 &&
      this.inFlight === 0 &&
      !this.registered &&
      this.slotsHeld === 0 &&
      now >= this.pausedUntil
    );
  }

  private refuse(reason: ThrottleRejection, now: number): Promise<never> {
    this.deps.throttled(reason);
    return Promise.reject(this.refusal(reason, now));
  }

  private refusal(reason: ThrottleRejection | 'closing', now: number): DomainError {
    return new DomainError(ErrorCode.RateLimited, MESSAGES[reason], {
      organizationId: this.organizationId,
      retryAfterSeconds: retryAfterSeconds({
        pausedMs: Math.max(0, this.pausedUntil - now),
        waiting: this.waiters.size + 1,
        ratePerSecond: this.ratePerSecond,
      }),
    });
  }
}
