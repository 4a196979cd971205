import { setTimeout as sleep } from 'node:timers/promises';

import { Global, Inject, Module, OnModuleInit, Type } from '@nestjs/common';
import { DataSource } from 'typeorm';

import { DomainError } from 'src/common/errors/domain-error';
import { GatewayThrottleMetrics, ThrottleRejection } from 'src/gateway/throttle/gateway-throttle.metrics';
import { GatewayThrottleService } from 'src/gateway/throttle/gateway-throttle.service';
import { MetricsService } from 'src/metrics/metrics.service';

/** What the throttle reported to its metrics seam, per organization. */
export interface RecordedMetrics {
  queued: Map<string, number>;
  throttled: Map<string, Record<ThrottleRejection, number>>;
  upstream: { organizationId: string; pauseSeconds: number }[];
}

/**
 * A module that records what the throttle reports to its metrics seam (one per app). The app
 * provides GATEWAY_THROTTLE_METRICS with its MetricsService (GatewayThrottleModule), so this taps
 * that service's seam methods: each call is recorded, then counted on /metrics as usual.
 */
export function recordingMetrics(): { module: Type; recorded: RecordedMetrics } {
  const recorded: RecordedMetrics = { queued: new Map(), throttled: new Map(), upstream: [] };
  const sink: GatewayThrottleMetrics = {
    queued: (org) => recorded.queued.set(org, (recorded.queued.get(org) ?? 0) + 1),
    throttled: (org, reason) => {
      const counts = recorded.throttled.get(org) ?? { queue_full: 0, queue_timeout: 0, paused: 0 };
      counts[reason] += 1;
      recorded.throttled.set(org, counts);
    },
    upstreamThrottled: (organizationId, pauseSeconds) =>
      recorded.upstream.push({ organizationId, pauseSeconds }),
  };
  @Global()
  @Module({})
  class RecordingMetricsModule implements OnModuleInit {
    constructor(@Inject(MetricsService) private readonly metrics: MetricsService) {}

    onModuleInit(): void {
      const seam: GatewayThrottleMetrics = this.metrics;
      for (const name of ['queued', 'throttled', 'upstreamThrottled'] as const) {
        const original = seam[name].bind(seam) as (...args: unknown[]) => void;
        const tap = sink[name] as (...args: unknown[]) => void;
        (this.metrics as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
          tap(...args);
          original(...args);
        };
      }
    }
  }
  return { module: RecordingMetricsModule, recorded };
}

/** Counts the statements sent through `ds.query` (the throttle's repositories use it), by organization. */
export function countStatements(ds: DataSource): { byOrganization(id: string): number; stop(): void } {
  const counts = new Map<string, number>();
  const original = ds.query.bind(ds);
  ds.query = ((sql: string, params?: unknown[], ...rest: unknown[]) => {
    const org = typeof params?.[0] === 'string' ? params[0] : '';
    counts.set(org, (counts.get(org) ?? 0) + 1);
    return (original as (...args: unknown[]) => Promise<unknown>)(sql, params, ...rest);
  }) as typeof ds.query;
  return { byOrganization: (id) => counts.get(id) ?? 0, stop: () => (ds.query = original) };
}

export interface BurstResult {
  /** When each request started (ms since epoch). */
  starts: number[];
  /** Requests started on each instance. */
  perInstance: number[];
  rejections: unknown[];
  maxInFlight: number;
  startedAt: number;
}

/**
 * Closed-loop load on one organization through several instances: `workers` per instance each
 * acquire, hold the slot for a random time in `holdMs`, release, and start again until
 * `durationMs` is over; a 429 makes a worker pause 20 ms. In-flight requests are counted across
 * all instances together.
 */
export async function burst(options: {
  organizationId: string;
  instances: GatewayThrottleService[];
  workers: number;
  durationMs: number;
  holdMs: [number, number];
}): Promise<BurstResult> {
  const result: BurstResult = {
    starts: [],
    perInstance: options.instances.map(() => 0),
    rejections: [],
    maxInFlight: 0,
    startedAt: Date.now(),
  };
  const end = result.startedAt + options.durationMs;
  let inFlight = 0;
  const [low, high] = options.holdMs;
  const worker = async (throttle: GatewayThrottleService, index: number): Promise<void> => {
    while (Date.now() < end) {
      let release: () => void;
      try {
        release = await throttle.acquire(options.organizationId);
      } catch (error) {
        result.rejections.push(error);
        await sleep(20);
        continue;
      }
      result.starts.push(Date.now());
      result.perInstance[index] += 1;
      inFlight += 1;
      result.maxInFlight = Math.max(result.maxInFlight, inFlight);
      await sleep(low + Math.random() * (high - low));
      inFlight -= 1;
      release();
    }
  };
  await Promise.all(
    options.instances.flatMap((throttle, index) =>
      Array.from({ length: options.workers }, () => worker(throttle, index)),
    ),
  );
  return result;
}

/** Requests started within the first `ms` of the burst. */
export function startedWithin(result: BurstResult, ms: number): number {
  return result.starts.filter((at) => at < result.startedAt + ms).length;
}

export function isDomainError(error: unknown): error is DomainError {
  return error instanceof DomainError;
}
