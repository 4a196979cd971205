import type { ApiKeyPrincipal } from 'src/api-keys/api-keys.types';

import { basePagingId } from './paging-links';

/** A gateway request, as the permission rules see it. */
export interface GatewayRequestShape {
  /** Upper case. */
  method: string;
  /** The path under the FHIR base, split: `['Patient', '123']`; `[]` for the base itself. */
  segments: string[];
  /** The search parameters: the query, plus a form-encoded `_search` body. */
  params: URLSearchParams;
  /**
   * For a paging link at the base (`[base]?_getpages=<id>`): whether the gateway passed that id on
   * to this key in the answer to one of its own searches (PagingMemory, paging-links.ts).
   */
  knownPagingLink?: boolean;
}

/** Why a request is refused: a method the gateway does not serve, or one the key may not use. */
export interface AccessRefusal {
  kind: 'method' | 'forbidden';
  message: string;
}

/** Methods of the FHIR RESTful API (FHIR R4 §3.1.0); anything else is not forwarded. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Whether the request only reads: GET and HEAD, and a search sent as a form (`POST [type]/_search`,
 * `POST _search`, FHIR R4 §3.1.0.8.1), which FHIR defines as the same search as its GET.
 */
export function isRead(method: string, segments: string[]): boolean {
  return method === 'GET' || method === 'HEAD' || (method === 'POST' && segments.at(-1) === '_search');
}

const INCLUDES = ['_include', '_include:iterate', '_revinclude', '_revinclude:iterate'];

/**
 * A Bulk Data kick-off (https://hl7.org/fhir/uv/bulkdata/export.html): `$export` at the base, on
 * `Patient` or on `Group/[id]`.
 */
export function isExportKickOff(segments: string[]): boolean {
  const [first, second, third] = segments;
  if (segments.length === 1) return first === '$export';
  if (segments.length === 2) return first === 'Patient' && second === '$export';
  return segments.length === 3 && first === 'Group' && !second.startsWith('$') && third === '$export';
}

/**
 * A Bulk Data job's own URL, as servers lay it out: Epic's status URL `BulkRequest/[job]` and its
 * files `BulkRequest/[job]/[file]`, HAPI FHIR's status URL `$export-poll-status?_jobId=…`. The job
 * was checked at its kick-off, and its id, which the server chose, is what names it.
 */
export function isBulkJobPath(segments: string[]): boolean {
  const [first] = segments;
  if (first === 'BulkRequest') return segments.length === 2 || segments.length === 3;
  return segments.length === 1 && first === '$export-poll-status';
}

/**
 * The job a Bulk Data job URL belongs to, as the gateway records it at the kick-off: its status
 * path, `BulkRequest/[job]` for the status URL and files of Epic's layout, `$export-poll-status?_jobId=[job]`
 * for HAPI FHIR's. Null for anything else (and for a HAPI status URL without one `_jobId`).
 */
export function bulkJobOf(segments: string[], params: URLSearchParams): string | null {
  if (!isBulkJobPath(segments)) return null;
  if (segments[0] === 'BulkRequest') return `BulkRequest/${segments[1]}`;
  const ids = params.getAll('_jobId');
  return ids.length === 1 && ids[0] !== '' ? `$export-poll-status?_jobId=${ids[0]}` : null;
}

/** Cancelling a Bulk Data job (`DELETE` on its status URL): part of reading, it changes no data. */
const isBulkCancel = (method: string, segments: string[]) =>
  method === 'DELETE' && isBulkJobPath(segments) && segments.length !== 3;

/**
 * The types a kick-off exports: those `_type` names (comma-separated, repeatable) and those
 * `_typeFilter` filters on; 'all' without `_type` (the server exports every type it holds).
 */
function exportedTypes(params: URLSearchParams): string[] | 'all' {
  const split = (name: string) =>
    params
      .getAll(name)
      .flatMap((value) => value.split(','))
      .map((value) => value.trim())
      .filter(Boolean);
  const named = split('_type');
  if (named.length === 0) return 'all';
  const filtered = split('_typeFilter').map((filter) => filter.split('?')[0]);
  return [...new Set([...named, ...filtered])];
}

/**
 * The resource types a request touches, or 'all' when it may touch any:
 * - the base itself (a batch or transaction, a whole-system search or a server's paging link
 *   `[base]?_getpages=…`), whole-system `_search` and `_history`, and any `$operation` (which may
 *   return anything: `Patient/1/$everything`);
 * - else the type of the path (`Observation/…`), the type a compartment search returns
 *   (`Patient/1/Observation`), and the types `_revinclude` (its source) and `_include` (its target,
 *   which must be named: `Observation:patient:Patient`) add to the answer;
 * - `metadata` touches none: the CapabilityStatement is always allowed;
 * - a Bulk Data kick-off (`$export`) touches the types its `_type` names (and `_typeFilter`
 *   filters), all without `_type`; a job's status URL and files touch none of their own (the
 *   kick-off was checked: src/gateway/README.md, "Bulk Data").
 */
export function resourceTypesOf(segments: string[], params: URLSearchParams): string[] | 'all' {
  const [first] = segments;
  if (first === 'metadata' && segments.length === 1) return [];
  if (isExportKickOff(segments)) return exportedTypes(params);
  if (isBulkJobPath(segments)) return [];
  if (first === undefined || !/^[A-Za-z]/.test(first) || segments.some((s) => s.startsWith('$'))) {
    return 'all';
  }
  const types = new Set([first]);
  if (segments.length >= 3 && /^[A-Z]/.test(segments[2])) types.add(segments[2]);
  for (const name of INCLUDES) {
    for (const value of params.getAll(name)) {
      const [source, , target] = value.split(':');
      const added = name.startsWith('_revinclude') ? source : target;
      if (!added || added === '*' || source === '*') return 'all';
      types.add(added);
    }
  }
  return [...types];
}

/**
 * What an API key may do with a request, or null when it may (docs: src/gateway/README.md,
 * "Permissions"). A `read` key reads and searches; writes need `read_write`. A key with a
 * resource-type allow-list touches only those types, and nothing that may touch every type.
 */
export function refuseAccess(
  principal: Pick<ApiKeyPrincipal, 'access' | 'resourceTypes'>,
  request: GatewayRequestShape,
): AccessRefusal | null {
  const { method, segments, params } = request;
  if (!METHODS.has(method)) {
    return { kind: 'method', message: `${method} is not a method of the FHIR RESTful API.` };
  }
  if (!isRead(method, segments) && !isBulkCancel(method, segments) && principal.access !== 'read_write') {
    return {
      kind: 'forbidden',
      message: `This API key may only read: ${method} needs a key with read_write access.`,
    };
  }
  const allowed = principal.resourceTypes;
  if (allowed === null) return null;
  if ((method === 'GET' || method === 'HEAD') && basePagingId(segments, params) !== null) {
    // Its types are those of the search it pages, which this key made (and was checked for).
    if (request.knownPagingLink) return null;
    return {
      kind: 'forbidden',
      message:
        'This API key is limited to some resource types, and may follow a paging link at the ' +
        "server's base ([base]?_getpages=…) only when the gateway gave it that link in the answer to " +
        "one of the key's own searches, on the same gateway instance, within the last 30 minutes. " +
        'Repeat the search to page it again.',
    };
  }
  // A kick-off by POST carries its _type in a Parameters body, which is not read here: any type.
  const postedExport = isExportKickOff(segments) && method !== 'GET' && method !== 'HEAD';
  const touched = postedExport ? 'all' : resourceTypesOf(segments, params);
  if (touched === 'all') {
    return {
      kind: 'forbidden',
      message:
        'This API key is limited to some resource types, and this request may touch any type ' +
        '(a batch or transaction, a whole-system search or history, an operation, an _include ' +
        'without a target type such as Observation:patient:Patient, or a $export without _type).',
    };
  }
  const refused = touched.filter((type) => !allowed.includes(type));
  if (refused.length > 0) {
    return {
      kind: 'forbidden',
      message: `This API key may not access ${refused.join(', ')} (it allows ${allowed.join(', ') || 'no type'}).`,
    };
  }
  return null;
}
