import { existsSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

import { TEST_SECRET_MARKER } from 'test/factories/secrets';

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

/**
 * Warnings and errors the app logged during the run (LOG_FILE), grouped by message with ids
 * replaced by `<id>`, and whether a token or test secret reached the log.
 */
export function appLogSummary(): string {
  const file = process.env.LOG_FILE;
  if (!file || !existsSync(file)) return 'App log: none written.';
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const entries = lines.map((line) => {
    try {
      const parsed = JSON.parse(line) as { level?: unknown; msg?: unknown };
      return { level: Number(parsed.level), msg: typeof parsed.msg === 'string' ? parsed.msg : line };
    } catch {
      return { level: NaN, msg: line };
    }
  });
  const warnings = entries.filter(({ level }) => level === 40);
  const errors = entries.filter(({ level }) => level >= 50);
  const leaked = lines.some((line) => line.includes(TEST_SECRET_MARKER));
  const out = [
    `App log: ${lines.length} lines, ${warnings.length} warnings, ${errors.length} errors` +
      (leaked ? '; A TOKEN OR SECRET REACHED THE LOG' : '; no token or secret in it'),
  ];
  const groups = new Map<string, number>();
  for (const { msg } of [...errors, ...warnings]) {
    const key = msg.slice(0, 200).replace(UUID, '<id>');
    groups.set(key, (groups.get(key) ?? 0) + 1);
  }
  for (const [msg, n] of [...groups].slice(0, 5)) out.push(`  ${n} × ${msg}`);
  return out.join('\n');
}

/** The closing lines of every bench section: the app log's summary and the section's run time. */
export function printClosing(startedMs: number): void {
  console.log(`\n${appLogSummary()}`);
  console.log(`Total time: ${((performance.now() - startedMs) / 1000).toFixed(1)} s`);
}
