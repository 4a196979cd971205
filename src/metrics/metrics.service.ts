import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

/** Outcomes of a FHIR call, as FhirClient classifies them. */
export type FhirCallOutcome = 'success' | 'fhir_error' | 'unavailable' | 'reauthentication_required';
/** Outcomes of a token refresh request. */
export type RefreshOutcome = 'refreshed' | 'reused' | 'terminal' | 'transient';
/** Why the gateway's throttle refused a request (GatewayThrottleMetrics' ThrottleRejection). */
export type GatewayThrottleReason = 'queue_full' | 'queue_timeout' | 'paused';

/** The methods of FHIR's RESTful API; any other is labelled OTHER (bounded label values). */
const GATEWAY_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

/** `2xx`…`5xx` (a status outside 100–599 counts as `5xx`: it can only be a bug). */
export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : '5xx';
}

/**
 * Prometheus metrics (prom-client) on a registry of this application's own (never the global
 * one, so several apps in one process, as in tests, do not collide). Modules record through
 * the typed methods; ConnectionHealth adds gauges read from the database at scrape time and
 * serves `/metrics`.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  private readonly refreshes = new Counter({
    name: 'epic_connect_token_refresh_total',
    help: 'Token refresh requests by outcome (reused: a sibling had already refreshed)',
    labelNames: ['outcome'],
    registers: [this.registry],
  });

  private readonly fhirCalls = new Histogram({
    name: 'epic_connect_fhir_request_duration_seconds',
    help: 'FHIR calls to Epic, including refreshes and retries, by outcome',
    labelNames: ['outcome'],
    buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  private readonly checkRuns = new Histogram({
    name: 'epic_connect_connection_check_duration_seconds',
    help: 'Duration of the scheduled connection expiry check, by outcome',
    labelNames: ['outcome'],
    buckets: [0.1, 0.5, 1, 5, 15, 60, 300],
    registers: [this.registry],
  });

  // The FHIR gateway, per organization. The `organization` label is the organization's id: stable
  // across renames (a slug is not), and bounded by the number of organizations.
  private readonly gatewayRequests = new Counter({
    name: 'epic_connect_gateway_requests_total',
    help: 'FHIR gateway requests of an authenticated API key, by organization id, method and status class',
    labelNames: ['organization', 'method', 'status_class'],
    registers: [this.registry],
  });

  private readonly gatewayDuration = new Histogram({
    name: 'epic_connect_gateway_request_duration_seconds',
    help: 'FHIR gateway requests from authentication to the end of the answer (queueing included), by organization id',
    labelNames: ['organization'],
    buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120],
    registers: [this.registry],
  });

  private readonly gatewayQueued = new Counter({
    name: 'epic_connect_gateway_queued_total',
    help: "FHIR gateway requests that waited for their organization's slot or rate token, by organization id",
    labelNames: ['organization'],
    registers: [this.registry],
  });

  private readonly gatewayThrottled = new Counter({
    name: 'epic_connect_gateway_throttled_total',
    help: 'FHIR gateway requests refused with 429 by the throttle, by organization id and reason',
    labelNames: ['organization', 'reason'],
    registers: [this.registry],
  });

  private readonly gatewayUpstream429 = new Counter({
    name: 'epic_connect_gateway_upstream_throttled_total',
    help: "The FHIR server's own 429 answers to gateway requests (each pauses the organization), by organization id",
    labelNames: ['organization'],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'epic_connect_' });
    for (const outcome of ['refreshed', 'reused', 'terminal', 'transient'] as const) {
      this.refreshes.inc({ outcome }, 0);
    }
  }

  refreshAttempt(outcome: RefreshOutcome): void {
    this.refreshes.inc({ outcome });
  }

  fhirCall(outcome: FhirCallOutcome, seconds: number): void {
    this.fhirCalls.observe({ outcome }, seconds);
  }

  connectionCheck(outcome: 'success' | 'failure', seconds: number): void {
    this.checkRuns.observe({ outcome }, seconds);
  }

  /** One gateway request of an authenticated key ended (answered, refused, or the caller left). */
  gatewayRequest(organizationId: string, method: string, status: number, seconds: number): void {
    const upper = method.toUpperCase();
    this.gatewayRequests.inc({
      organization: organizationId,
      method: GATEWAY_METHODS.has(upper) ? upper : 'OTHER',
      status_class: statusClass(status),
    });
    this.gatewayDuration.observe({ organization: organizationId }, seconds);
  }

  // GatewayThrottleMetrics (src/gateway/throttle/gateway-throttle.metrics.ts), structurally: the
  // gateway provides GATEWAY_THROTTLE_METRICS with this service. Synchronous, never throw.

  /** A gateway request had to wait for its organization's slot or token. */
  queued(organizationId: string): void {
    this.gatewayQueued.inc({ organization: organizationId });
  }

  /** The throttle refused a gateway request with 429. */
  throttled(organizationId: string, reason: GatewayThrottleReason): void {
    this.gatewayThrottled.inc({ organization: organizationId, reason });
  }

  /** The FHIR server answered a gateway request 429 (the organization pauses `_pauseSeconds`). */
  upstreamThrottled(organizationId: string, _pauseSeconds: number): void {
    this.gatewayUpstream429.inc({ organization: organizationId });
  }
}
