/** One JSON Patch operation (RFC 6902 §4). */
export interface PatchOperation {
  op: string;
  path: string;
  value?: unknown;
  from?: string;
}

/** A JSON Pointer's tokens (RFC 6901 §3, §4: `~1` is `/`, `~0` is `~`). */
function tokens(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new Error(`"${pointer}" is not a JSON Pointer`);
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

type Container = Record<string, unknown> | unknown[];

function parentOf(doc: unknown, path: string): { parent: Container; key: string } {
  const parts = tokens(path);
  const key = parts.pop();
  if (key === undefined) throw new Error('the whole document cannot be patched');
  let node: unknown = doc;
  for (const part of parts) {
    node = (node as Record<string, unknown> | undefined)?.[part];
    if (node === null || typeof node !== 'object') throw new Error(`no member at ${path}`);
  }
  return { parent: node as Container, key };
}

/**
 * Applies a JSON Patch (RFC 6902) to a copy of `doc`: add, remove, replace and test (the operations
 * FHIR's examples use, FHIR R4 §3.1.0.5). Throws on a bad path or a failed test.
 */
export function applyJsonPatch<T>(doc: T, operations: PatchOperation[]): T {
  const out = structuredClone(doc);
  for (const { op, path, value } of operations) {
    const { parent, key } = parentOf(out, path);
    const index = Array.isArray(parent) ? (key === '-' ? parent.length : Number(key)) : NaN;
    switch (op) {
      case 'add':
        if (Array.isArray(parent)) parent.splice(index, 0, value);
        else parent[key] = value;
        break;
      case 'replace':
      case 'remove': {
        const exists = Array.isArray(parent) ? index < parent.length : key in parent;
        if (!exists) throw new Error(`no member at ${path}`);
        if (Array.isArray(parent)) parent.splice(index, 1, ...(op === 'replace' ? [value] : []));
        else if (op === 'replace') parent[key] = value;
        else delete parent[key];
        break;
      }
      case 'test': {
        const actual = Array.isArray(parent) ? parent[index] : parent[key];
        if (JSON.stringify(actual) !== JSON.stringify(value)) throw new Error(`test failed at ${path}`);
        break;
      }
      default:
        throw new Error(`the fake does not apply "${op}"`);
    }
  }
  return out;
}
