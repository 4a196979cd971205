/** Ends a request's hold on its organization's capacity: call once, when its answer has ended. */
export type ThrottleRelease = () => void;

/**
 * What the gateway asks of a throttle, per organization (GatewayThrottleService, throttle/README.md):
 * `acquire` before a request is forwarded, resolving with its release or rejecting with
 * `DomainError(ErrorCode.RateLimited, message, { retryAfterSeconds })`, which the gateway answers
 * 429 with Retry-After and an OperationOutcome (`throttled`); `upstreamThrottled` when the FHIR
 * server itself answered 429.
 */
export interface GatewayThrottle {
  acquire(organizationId: string): Promise<ThrottleRelease>;
  upstreamThrottled(organizationId: string, retryAfterSeconds: number | null): Promise<void>;
}

/** The provider token of the gateway's throttle. */
export const GATEWAY_THROTTLE = Symbol('GATEWAY_THROTTLE');
