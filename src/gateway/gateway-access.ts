import type { ApiKeyPrincipal } from 'src/api-keys/api-keys.types';

/** A gateway request, as the permission rules see it. */
export interface GatewayRequestShape {
  /** Upper case. */
  method: string;
  /** The path under the FHIR base, split: `['Patient', '123']`; `[]` for the base itself. */
  segments: string[];
  /** The search parameters: the query, plus a form-encoded `_search` body. */
  params: URLSearchParams;
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
 * The resource types a request touches, or 'all' when it may touch any:
 * - the base itself (a batch or transaction, a whole-system search or a server's paging link
 *   `[base]?_getpages=…`), whole-system `_search` and `_history`, and any `$operation` (which may
 *   return anything: `Patient/1/$everything`);
 * - else the type of the path (`Observation/…`), the type a compartment search returns
 *   (`Patient/1/Observation`), and the types `_revinclude` (its source) and `_include` (its target,
 *   which must be named: `Observation:patient:Patient`) add to the answer;
 * - `metadata` touches none: the CapabilityStatement is always allowed.
 */
export function resourceTypesOf(segments: string[], params: URLSearchParams): string[] | 'all' {
  const [first] = segments;
  if (first === 'metadata' && segments.length === 1) return [];
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
  if (!isRead(method, segments) && principal.access !== 'read_write') {
    return {
      kind: 'forbidden',
      message: `This API key may only read: ${method} needs a key with read_write access.`,
    };
  }
  const allowed = principal.resourceTypes;
  if (allowed === null) return null;
  const touched = resourceTypesOf(segments, params);
  if (touched === 'all') {
    return {
      kind: 'forbidden',
      message:
        'This API key is limited to some resource types, and this request may touch any type ' +
        '(a batch or transaction, a whole-system search or history, an operation, or an _include ' +
        'without a target type such as Observation:patient:Patient).',
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
