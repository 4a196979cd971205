import { DataSource } from 'typeorm';

import { count, ms } from './load';

/** One statement as sent through `DataSource.query`, with the `SET LOCAL`s sent before it. */
export interface SentQuery {
  sql: string;
  params: unknown[];
  /** Planner settings the service applied to this statement's transaction (EXPLAIN applies them too). */
  settings: string[];
}

/**
 * Runs `work` while recording the statements sent through `ds.query`. The app's services hold the
 * same DataSource instance (`app.get(DataSource)`), so this sees their SQL and parameters as sent.
 */
export async function captureQueries<T>(
  ds: DataSource,
  work: () => Promise<T>,
): Promise<{ result: T; sent: SentQuery[] }> {
  const sent: SentQuery[] = [];
  let settings: string[] = [];
  const original = ds.query.bind(ds);
  ds.query = ((sql: string, params?: unknown[], ...rest: unknown[]) => {
    if (/^\s*SET\s+LOCAL\b/i.test(sql)) settings.push(sql);
    else {
      sent.push({ sql, params: params ?? [], settings });
      settings = [];
    }
    return (original as (...args: unknown[]) => Promise<unknown>)(sql, params, ...rest);
  }) as typeof ds.query;
  try {
    return { result: await work(), sent };
  } finally {
    ds.query = original;
  }
}

/** EXPLAIN (ANALYZE, BUFFERS) of one statement with its parameters, as one line (`describePlan`). */
export async function explainPlan(ds: DataSource, query: SentQuery): Promise<string> {
  const [row] = await ds.transaction(async (manager) => {
    for (const setting of query.settings) await manager.query(setting);
    return manager.query<{ 'QUERY PLAN': ExplainOutput }[]>(
      `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${query.sql}`,
      query.params,
    );
  });
  return describePlan(row['QUERY PLAN'][0]);
}

interface ExplainNode {
  'Node Type': string;
  'Index Name'?: string;
  'Relation Name'?: string;
  'Actual Rows'?: number;
  'Rows Removed by Filter'?: number;
  'Shared Hit Blocks'?: number;
  'Shared Read Blocks'?: number;
  Plans?: ExplainNode[];
}
type ExplainOutput = { Plan: ExplainNode; 'Execution Time': number; 'Planning Time': number }[];

/** One line: the plan's shape, whether it used an index, rows filtered away, buffers and time. */
export function describePlan(explain: ExplainOutput[number]): string {
  const indexes = new Set<string>();
  let seqScans = 0;
  let removed = 0;
  const shape = (node: ExplainNode): string => {
    if (node['Index Name']) indexes.add(node['Index Name']);
    if (node['Node Type'] === 'Seq Scan') seqScans += 1;
    removed += node['Rows Removed by Filter'] ?? 0;
    const label = node['Index Name'] ? `${node['Node Type']} ${node['Index Name']}` : node['Node Type'];
    const children = (node.Plans ?? []).map(shape);
    return children.length === 0 ? label : `${label}(${children.join(', ')})`;
  };
  const text = shape(explain.Plan);
  const top = explain.Plan;
  const index = indexes.size > 0 ? `index: ${[...indexes].join(', ')}` : 'NO INDEX';
  return (
    `${text}; ${index}${seqScans > 0 ? `, ${seqScans} seq scan(s)` : ''}; ` +
    `${count(top['Actual Rows'] ?? NaN)} rows, ${count(removed)} removed by filter; ` +
    `buffers hit ${count(top['Shared Hit Blocks'] ?? 0)} read ${count(top['Shared Read Blocks'] ?? 0)}; ` +
    `planning ${ms(explain['Planning Time'])} ms, execution ${ms(explain['Execution Time'])} ms`
  );
}
