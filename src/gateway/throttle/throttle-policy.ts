/**
 * The numbers of the gateway throttle (README.md in this folder): how big a lease is, how long it
 * lasts, when to ask the database again. Pure functions; the lease statement in
 * gateway-budget.repository.ts applies the same batch and bucket rules in SQL, and
 * test/e2e/gateway-throttle checks that both agree.
 */

import { GATEWAY_CONCURRENCY_RANGE, GATEWAY_RATE_RANGE } from 'src/config/env.schema';

/** A batch is what the rate grants in this long: 10% of a second. */
export const LEASE_PERIOD_MS = 100;
/** A lease may reserve tokens the bucket will refill within this long (a debt of one second). */
export const RESERVE_AHEAD_MS = 1_000;
/** A lease asks for the tokens this instance's arrivals are expected to need in this long. */
export const LEASE_HORIZON_MS = 250;
/** Leased tokens not used within this long are dropped, so a pause reaches every instance in time. */
export const TOKEN_TTL_MS = 500;
/** A slot lease lapses this long after its last renewal: a crashed instance's slots come back. */
export const SLOT_LEASE_TTL_MS = 5_000;
/** An instance holding a slot lease renews it (and takes its fair share again) this often. */
export const HEARTBEAT_MS = 1_000;
/** How often the seats that proportional shares leave over pass to other busy instances. */
export const SLOT_TURN_MS = 1_000;
/** The shortest wait before asking again for slots the database could not give. */
export const SLOT_RETRY_MS = 100;
/** The shortest and longest wait before asking again for tokens. */
export const MIN_LEASE_DELAY_MS = 10;
export const MAX_LEASE_DELAY_MS = 1_000;
/** How long limits() reuses what the last lease (or read) said. */
export const LIMITS_CACHE_MS = 5_000;
/** The longest pause an upstream Retry-After can impose on an organization. */
export const MAX_UPSTREAM_PAUSE_SECONDS = 900;
/** The longest Retry-After a queue estimate gives. */
const MAX_RETRY_AFTER_SECONDS = 60;

/** Ranges of the limits (config and root admin overrides alike): defined once, with the config. */
export const RATE_RANGE = GATEWAY_RATE_RANGE;
export const CONCURRENCY_RANGE = GATEWAY_CONCURRENCY_RANGE;

/**
 * The most tokens one lease takes (B): the rate's worth of one lease period, at least 1. With N
 * instances, what the organization is granted over any span of T seconds stays within
 * rate·T + (N + 2)·B (overshootBound), and 2·B is the bucket's size.
 */
export function batchSize(ratePerSecond: number): number {
  return Math.max(1, Math.ceil((ratePerSecond * LEASE_PERIOD_MS) / 1000));
}

/** The bucket holds at most two batches: the burst an idle organization may send at once. */
export function bucketCapacity(ratePerSecond: number): number {
  return 2 * batchSize(ratePerSecond);
}

/**
 * The most requests N instances can start over any span beyond rate·T: the bucket's burst (2·B)
 * plus what each instance may still hold from an earlier lease (B each).
 */
export function overshootBound(ratePerSecond: number, instances: number): number {
  return (instances + 2) * batchSize(ratePerSecond);
}

/**
 * Tokens to ask for when the requests waiting have none: those waiting plus this instance's
 * expected arrivals over the next LEASE_HORIZON_MS, at least 1 and at most a batch. Adaptive: a quiet
 * instance asks for one, a busy one for a whole batch, so the statements per second stay near
 * rate / batch (or arrivals / lease) whatever the request rate.
 */
export function tokensToLease(waiting: number, arrivalsPerSecond: number, batch: number): number {
  const needed = waiting + Math.round((arrivalsPerSecond * LEASE_HORIZON_MS) / 1000);
  return Math.min(batch, Math.max(1, needed));
}

/**
 * How long to wait before the next token lease. A lease that got what it asked for may be followed
 * as soon as those tokens are used (leases reserve ahead of the refill, so they need no waiting).
 * A short one (reservations reached RESERVE_AHEAD_MS, or a pause) waits until the rate refilled
 * what was asked, at least one lease period, plus up to half a period at random (`jitter` in
 * [0, 1)), so starved instances do not all ask again at the same moment.
 */
export function nextLeaseDelayMs(
  asked: number,
  granted: number,
  ratePerSecond: number,
  jitter = Math.random(),
): number {
  if (granted >= asked) return 0;
  const ms = Math.max(LEASE_PERIOD_MS, (asked / ratePerSecond) * 1000) + (jitter * LEASE_PERIOD_MS) / 2;
  return Math.min(MAX_LEASE_DELAY_MS, Math.max(MIN_LEASE_DELAY_MS, Math.ceil(ms)));
}

/**
 * Retry-After for a request turned away: the rest of an upstream pause, or else about how long the
 * requests ahead of it would take at the organization's rate. At least 1 second.
 */
export function retryAfterSeconds(input: {
  pausedMs: number;
  waiting: number;
  ratePerSecond: number;
}): number {
  if (input.pausedMs > 0) return Math.max(1, Math.ceil(input.pausedMs / 1000));
  const drain = Math.ceil(input.waiting / input.ratePerSecond);
  return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, drain));
}

/** The pause an upstream 429 imposes: its Retry-After (or the default), 1 s to 15 min. */
export function upstreamPauseSeconds(retryAfterSeconds: number | null, defaultSeconds: number): number {
  const seconds =
    retryAfterSeconds === null || !Number.isFinite(retryAfterSeconds) || retryAfterSeconds <= 0
      ? defaultSeconds
      : retryAfterSeconds;
  return Math.min(MAX_UPSTREAM_PAUSE_SECONDS, Math.max(1, Math.ceil(seconds)));
}

/**
 * Arrivals per second, smoothed exponentially over about a second: the demand a lease is sized
 * by. `record` counts one arrival at `now` (ms).
 */
export class ArrivalRate {
  private static readonly TAU_MS = 1_000;
  private value = 0;
  private at = 0;

  record(now: number): void {
    this.value = this.perSecond(now) + 1000 / ArrivalRate.TAU_MS;
    this.at = now;
  }

  perSecond(now: number): number {
    const elapsed = Math.max(0, now - this.at);
    return this.value * Math.exp(-elapsed / ArrivalRate.TAU_MS);
  }
}
