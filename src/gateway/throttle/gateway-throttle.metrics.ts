/** Why a request was turned away with 429 before reaching the upstream server. */
export type ThrottleRejection = 'queue_full' | 'queue_timeout' | 'paused';

/**
 * Where the throttle reports what it did, per organization. Optional: provide it under
 * GATEWAY_THROTTLE_METRICS (e.g. `{ provide: GATEWAY_THROTTLE_METRICS, useExisting: MetricsService }`
 * in a global module) and GatewayThrottleService calls it; otherwise nothing is recorded.
 * Each call is synchronous and must not throw.
 */
export interface GatewayThrottleMetrics {
  /** A request had to wait (no slot or token at once). */
  queued(organizationId: string): void;
  /** A request was refused with 429. */
  throttled(organizationId: string, reason: ThrottleRejection): void;
  /** The upstream server answered 429: the organization is paused for `pauseSeconds`. */
  upstreamThrottled(organizationId: string, pauseSeconds: number): void;
}

export const GATEWAY_THROTTLE_METRICS = Symbol('GATEWAY_THROTTLE_METRICS');
