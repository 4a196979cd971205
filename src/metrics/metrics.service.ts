import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

/** Outcomes of a FHIR call, as FhirClient classifies them. */
export type FhirCallOutcome = 'success' | 'fhir_error' | 'unavailable' | 'reauthentication_required';
/** Outcomes of a token refresh request. */
export type RefreshOutcome = 'refreshed' | 'reused' | 'terminal' | 'transient';

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
}
