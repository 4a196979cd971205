import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * docs/modules.md draws which feature module imports which. This reads the `imports` of every
 * src/<folder>/<folder>.module.ts and checks the picture shows exactly those edges, and that the
 * graph has no cycle.
 */
const ROOT = join(__dirname, '..', '..');

/** Feature modules as the picture names them (global infrastructure modules are not drawn). */
const FEATURE = new Set([
  'AdminUi',
  'ApiKeys',
  'Auth',
  'ClientKeys',
  'ConnectionHealth',
  'Connections',
  'EpicAuth',
  'FhirClient',
  'Gateway',
  'Mail',
  'Organizations',
  'Users',
]);

function codeEdges(): string[] {
  const edges: string[] = [];
  for (const folder of readdirSync(join(ROOT, 'src'), { withFileTypes: true })) {
    if (!folder.isDirectory()) continue;
    let source: string;
    try {
      source = readFileSync(join(ROOT, 'src', folder.name, `${folder.name}.module.ts`), 'utf8');
    } catch {
      continue;
    }
    const name = /export class (\w+)Module\b/.exec(source)?.[1];
    if (!name || !FEATURE.has(name)) continue;
    const decorator = source.slice(source.indexOf('@Module('));
    const imports =
      /imports:\s*\[([\s\S]*?)\]\s*,\s*\n\s*(?:controllers|providers|exports)\b/.exec(decorator)?.[1] ?? '';
    for (const [, target] of imports.matchAll(/\b([A-Z]\w*)Module\b/g)) {
      if (FEATURE.has(target) && target !== name) edges.push(`${name} --> ${target}`);
    }
  }
  return [...new Set(edges)].sort();
}

function pictureEdges(): string[] {
  const doc = readFileSync(join(ROOT, 'docs', 'modules.md'), 'utf8');
  const block = /```mermaid\n([\s\S]*?)```/.exec(doc)?.[1] ?? '';
  return [...block.matchAll(/^\s*(\w+) --> (\w+)\s*$/gm)].map(([, a, b]) => `${a} --> ${b}`).sort();
}

describe('docs/modules.md', () => {
  it('draws exactly the imports between feature modules', () => {
    const edges = codeEdges();
    expect(edges.length).toBeGreaterThan(10);
    expect(pictureEdges()).toEqual(edges);
  });

  it('shows a graph without cycles', () => {
    const next = new Map<string, string[]>();
    for (const edge of codeEdges()) {
      const [from, to] = edge.split(' --> ');
      next.set(from, [...(next.get(from) ?? []), to]);
    }
    const done = new Set<string>();
    const visit = (node: string, path: string[]): void => {
      expect(path).not.toContain(node);
      if (done.has(node)) return;
      for (const to of next.get(node) ?? []) visit(to, [...path, node]);
      done.add(node);
    };
    for (const node of next.keys()) visit(node, []);
  });
});
