import type { Readable } from 'node:stream';

/** A request to pass to the FHIR server as it came (FhirClientService.forward). */
export interface ForwardRequest {
  method: string;
  /** Under the FHIR base, without a leading slash: `Patient/123`, `Observation/_search`; '' for the base. */
  path: string;
  /** The query string as received, without `?` ('' for none). */
  query?: string;
  /** The caller's headers: only FORWARDED_REQUEST_HEADERS are sent on (never Authorization or cookies). */
  headers?: Readonly<Record<string, string | string[] | undefined>>;
  /** The body, read whole (bounded by the caller), so that a replay after a 401 can send it again. */
  body?: Buffer;
  /** The longest wait before a retry; a longer Retry-After fails at once (default FHIR_RETRY_MAX_WAIT_SECONDS). */
  maxWaitSeconds?: number;
  /** Aborts the call (the caller went away). */
  signal?: AbortSignal;
  /** Told at once of each 429 the server answers (before any retry): the gateway's throttle. */
  onThrottled?: (retryAfterSeconds: number | null) => void;
}

/** The FHIR server's answer, whatever its status, with its body as a stream. */
export interface ForwardResponse {
  status: number;
  /** Only FORWARDED_RESPONSE_HEADERS, lower-case names. */
  headers: Record<string, string>;
  /** The body, decompressed; read it or destroy it. */
  stream: Readable;
  /** The FHIR base the request went to: every URL under it in the answer points at that server. */
  fhirBaseUrl: string;
}

/** Request headers a FHIR interaction is defined by (FHIR R4 §3.1.0 "RESTful API"); no other goes on. */
export const FORWARDED_REQUEST_HEADERS = [
  'accept',
  'content-type',
  'prefer',
  'if-match',
  'if-none-exist',
  'if-none-match',
  'if-modified-since',
] as const;

/**
 * Response headers a FHIR client reads (versions, new locations, the wait asked for, a Bulk Data
 * job's progress and the manifest's expiry); no other comes back.
 */
export const FORWARDED_RESPONSE_HEADERS = [
  'content-type',
  'etag',
  'last-modified',
  'location',
  'content-location',
  'retry-after',
  'preference-applied',
  'x-progress',
  'expires',
] as const;

/** A path segment under the FHIR base: types, ids, `_history`, `_search`, `$operation`, `metadata`. */
const PATH_SEGMENT = /^[A-Za-z0-9\-_.$]{1,128}$/;

/** The segments of a forwarded path, or null when it could leave the FHIR base (`..`, `%2F`, `//`). */
export function forwardPathSegments(path: string): string[] | null {
  if (path === '') return [];
  const segments = path.split('/');
  const safe = segments.every((s) => PATH_SEGMENT.test(s) && s !== '.' && s !== '..');
  return safe ? segments : null;
}
