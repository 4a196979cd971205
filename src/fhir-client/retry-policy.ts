/** When and how long to wait before retrying a FHIR call (pure; the clock and randomness are parameters). */

export interface RetrySettings {
  /** Retries after the first attempt. */
  attempts: number;
  /** The longest wait; a longer Retry-After gives up instead. */
  maxWaitMs: number;
  /** First backoff step; doubles per attempt. */
  baseMs?: number;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS']);

export const isIdempotent = (method: string | undefined): boolean =>
  IDEMPOTENT.has((method ?? 'GET').toUpperCase());

/**
 * Whether a forwarded request may be sent again after a transient failure: reads (GET, HEAD, and a
 * search sent as `POST …/_search`, which changes nothing: FHIR R4 §3.1.0.8.1), and writes only with
 * the conditional semantics their caller chose, which make a second copy harmless:
 * - `If-Match` (PUT, PATCH, DELETE): a replay of an applied write fails with 412 instead of applying
 *   twice (FHIR R4 §3.1.0.4.1, "Managing Resource Contention");
 * - `If-None-Exist` (POST, conditional create): a replay finds what the first one created
 *   (FHIR R4 §3.1.0.8.1);
 * - a conditional update or delete (`PUT [type]?search`, `DELETE [type]?search`) acts on whatever
 *   matches, once or twice alike (FHIR R4 §3.1.0.4.3, §3.1.0.7.1).
 * Every other write is sent once: a timeout does not say whether the server applied it.
 *
 * A Bulk Data kick-off (`$export`, by GET or POST) is never sent twice either, though a GET: each
 * kick-off the server receives starts a job (https://hl7.org/fhir/uv/bulkdata/export.html,
 * "Bulk Data Kick-off Request"), so a retry after a timeout or a 5xx may start a second export of the
 * same data. The caller sees the failure and decides.
 */
export function isRetryableForward(
  method: string,
  path: string,
  query: string,
  headers: Readonly<Record<string, string>>,
): boolean {
  const verb = method.toUpperCase();
  if (path.split('/').at(-1) === '$export') return false;
  if (verb === 'GET' || verb === 'HEAD') return true;
  const has = (name: string) => (headers[name] ?? '').trim() !== '';
  switch (verb) {
    case 'POST':
      return path.split('/').at(-1) === '_search' || has('if-none-exist');
    case 'PUT':
    case 'DELETE':
      return has('if-match') || query !== '';
    case 'PATCH':
      return has('if-match');
    default:
      return false;
  }
}

/** Error codes of a network failure or timeout (Node's and axios's), the only status-less transient ones. */
const NETWORK_CODES = new Set([
  'ECONNABORTED',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ERR_NETWORK',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
]);

/**
 * 5xx and 429 are transient; without a status, only network failures and timeouts are. Anything
 * else (a malformed URL, an oversized answer) is a problem with the request, not with Epic.
 */
export const isTransientFailure = (status: number | undefined, code?: string): boolean =>
  status !== undefined ? status === 429 || status >= 500 : code !== undefined && NETWORK_CODES.has(code);

/** Retry-After (RFC 9110 §10.2.3) in milliseconds: delay-seconds or an HTTP-date. */
export function parseRetryAfter(value: unknown, now: number): number | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  if (!/^[A-Za-z]{3}, /.test(trimmed)) return undefined; // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * The wait before retry number `attempt` (0-based), or undefined to give up: when retries are
 * used up, or when the server asks for longer than we are willing to hold a caller.
 * Exponential backoff with "equal jitter": half fixed, half random, so a burst spreads out.
 */
export function retryDelay(
  attempt: number,
  settings: RetrySettings,
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
): number | undefined {
  if (attempt >= settings.attempts) return undefined;
  if (retryAfterMs !== undefined) return retryAfterMs <= settings.maxWaitMs ? retryAfterMs : undefined;
  const step = Math.min(settings.maxWaitMs, (settings.baseMs ?? 200) * 2 ** attempt);
  return Math.round(step / 2 + (step / 2) * random());
}
