import type { TestApp } from './test-app';

/** One sample of the Prometheus text format: `name{label="value",…} number`. */
export interface PrometheusSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Parses the Prometheus text exposition format (version 0.0.4): one sample a line, `# HELP` and
 * `# TYPE` comments skipped. A line that is neither throws, so a malformed exposition fails the test.
 * @see https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
 */
export function parsePrometheus(text: string): PrometheusSample[] {
  return text
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
      if (!match) throw new Error(`not Prometheus text: ${line}`);
      const labels: Record<string, string> = {};
      for (const pair of (match[3] ?? '').match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? []) {
        const eq = pair.indexOf('=');
        labels[pair.slice(0, eq)] = pair.slice(eq + 2, -1);
      }
      return { name: match[1], labels, value: Number(match[4]) };
    });
}

/** The value of the first sample named `name` whose labels include `labels`; undefined if none. */
export function sampleValue(
  samples: PrometheusSample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    ?.value;
}

/**
 * GET /metrics of the app (with `token` as the bearer METRICS_TOKEN, if set), checked to be the
 * Prometheus text format, parsed. `text` is the exposition as served (HELP and TYPE lines included).
 */
export async function scrapeMetrics(
  t: TestApp,
  token?: string,
): Promise<{ samples: PrometheusSample[]; text: string }> {
  const req = t.http().get('/metrics');
  const res = await (token ? req.set('authorization', `Bearer ${token}`) : req).expect(200);
  if (!/^text\/plain; version=0\.0\.4/.test(String(res.headers['content-type']))) {
    throw new Error(`/metrics answered ${String(res.headers['content-type'])}, not Prometheus text`);
  }
  return { samples: parsePrometheus(res.text), text: res.text };
}
