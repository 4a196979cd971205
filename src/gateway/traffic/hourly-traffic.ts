import type { TrafficHour } from './gateway-traffic.types';

export const HOUR_MS = 3_600_000;
/** The chart's span: the current hour and the 23 before it. */
export const TRAFFIC_HOURS = 24;

/** The start of the first hour shown at `now`: the current hour's start, 23 hours back. */
export function trafficWindowStart(now: Date): Date {
  return new Date(Math.floor(now.getTime() / HOUR_MS) * HOUR_MS - (TRAFFIC_HOURS - 1) * HOUR_MS);
}

/**
 * The 24 hours up to `now`, oldest first, each with its counts: the hours the database returned
 * (grouped by `date_trunc('hour', at)`), zeros for the others; counts outside the window ignored.
 */
export function hourlyTraffic(counted: TrafficHour[], now: Date): TrafficHour[] {
  const start = trafficWindowStart(now).getTime();
  const hours: TrafficHour[] = Array.from({ length: TRAFFIC_HOURS }, (_, i) => ({
    hour: new Date(start + i * HOUR_MS),
    requests: 0,
    errors: 0,
  }));
  for (const row of counted) {
    const index = Math.floor((row.hour.getTime() - start) / HOUR_MS);
    if (index < 0 || index >= TRAFFIC_HOURS) continue;
    hours[index].requests += row.requests;
    hours[index].errors += row.errors;
  }
  return hours;
}
