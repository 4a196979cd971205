import { performance } from 'node:perf_hooks';

/** Latencies (ms) of the successful calls, wall time and failures of one or more runs. */
export interface LoadResult {
  latencies: number[];
  wallMs: number;
  errors: number;
  /** One message per distinct failure, with its count. */
  failures: Map<string, number>;
}

export function emptyResult(): LoadResult {
  return { latencies: [], wallMs: 0, errors: 0, failures: new Map() };
}

/**
 * Runs `task` `total` times, `concurrency` at a time: a closed loop, each worker starting its next call
 * when one ends.
 */
export async function runLoad(
  task: () => Promise<unknown>,
  total: number,
  concurrency: number,
  into: LoadResult = emptyResult(),
): Promise<LoadResult> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      next += 1;
      const start = performance.now();
      try {
        await task();
        into.latencies.push(performance.now() - start);
      } catch (error) {
        into.errors += 1;
        const message = error instanceof Error ? error.message : String(error);
        into.failures.set(message, (into.failures.get(message) ?? 0) + 1);
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, () => worker()));
  into.wallMs += performance.now() - started;
  return into;
}

export type Task = () => Promise<unknown>;

/**
 * Warms each task up (`warmup` calls), then runs `total` calls of each in `rounds` rounds,
 * alternating which goes first, so that drift (GC, JIT, the database's caches) hits all alike; the
 * latencies and wall time are aggregated per task.
 */
export async function compare<K extends string>(
  tasks: Record<K, Task>,
  total: number,
  concurrency: number,
  warmup: number,
  rounds: number,
): Promise<Record<K, LoadResult>> {
  const names = Object.keys(tasks) as K[];
  for (const name of names) await runLoad(tasks[name], warmup, concurrency);
  const results = Object.fromEntries(names.map((name) => [name, emptyResult()])) as Record<K, LoadResult>;
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? names : [...names].reverse();
    for (const name of order) await runLoad(tasks[name], total / rounds, concurrency, results[name]);
  }
  return results;
}

/** Nearest-rank percentile of `values` (ms); NaN when empty. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function summary(result: LoadResult): { p50: number; p99: number; max: number; perSecond: number } {
  return {
    p50: percentile(result.latencies, 50),
    p99: percentile(result.latencies, 99),
    max: percentile(result.latencies, 100),
    perSecond: result.wallMs > 0 ? (result.latencies.length / result.wallMs) * 1000 : NaN,
  };
}

export function ms(value: number): string {
  if (!Number.isFinite(value)) return '-';
  return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0);
}

export function count(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '-';
}

/** A plain-text table: text columns left-aligned, numeric ones right-aligned, two spaces of indent. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.every((row) => /^[-\d.,×%+ →]*$/.test(row[i] ?? '')));
  const line = (cells: string[]): string =>
    `  ${cells
      .map((cell, i) => (numeric[i] ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd()}`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
