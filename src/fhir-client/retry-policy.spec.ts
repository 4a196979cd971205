import {
  isIdempotent,
  isRetryableForward,
  isTransientFailure,
  parseRetryAfter,
  retryDelay,
} from './retry-policy';

describe('retry policy', () => {
  const settings = { attempts: 3, maxWaitMs: 10_000, baseMs: 200 };

  it('retries only idempotent methods', () => {
    expect(['GET', 'get', 'HEAD', 'OPTIONS', undefined].map(isIdempotent)).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
    expect(['POST', 'PUT', 'PATCH', 'DELETE'].map(isIdempotent)).toEqual([false, false, false, false]);
  });

  it('retries a forwarded request only when sending it twice does no harm', () => {
    const none = {};
    expect(isRetryableForward('GET', 'Patient/1', '', none)).toBe(true);
    expect(isRetryableForward('HEAD', 'Patient/1', '', none)).toBe(true);
    expect(isRetryableForward('POST', 'Patient/_search', '', none)).toBe(true);
    expect(isRetryableForward('POST', '_search', '', none)).toBe(true);
    // Plain writes: a timeout does not say whether the server applied them.
    expect(isRetryableForward('POST', 'Patient', '', none)).toBe(false);
    expect(isRetryableForward('POST', '', '', none)).toBe(false); // batch or transaction
    expect(isRetryableForward('PUT', 'Patient/1', '', none)).toBe(false);
    expect(isRetryableForward('PATCH', 'Patient/1', '', none)).toBe(false);
    expect(isRetryableForward('DELETE', 'Patient/1', '', none)).toBe(false);
    expect(isRetryableForward('POST', 'Patient/$match', '', none)).toBe(false);
    // Writes the caller made conditional.
    const ifMatch = { 'if-match': 'W/"3"' };
    expect(isRetryableForward('PUT', 'Patient/1', '', ifMatch)).toBe(true);
    expect(isRetryableForward('PATCH', 'Patient/1', '', ifMatch)).toBe(true);
    expect(isRetryableForward('DELETE', 'Patient/1', '', ifMatch)).toBe(true);
    expect(isRetryableForward('POST', 'Patient', '', { 'if-none-exist': 'identifier=1' })).toBe(true);
    expect(isRetryableForward('PUT', 'Patient', 'identifier=1', none)).toBe(true);
    expect(isRetryableForward('DELETE', 'Patient', 'identifier=1', none)).toBe(true);
    expect(isRetryableForward('PATCH', 'Patient', 'identifier=1', none)).toBe(false); // a patch may add twice
    expect(isRetryableForward('PUT', 'Patient/1', '', { 'if-match': ' ' })).toBe(false);
  });

  it('never retries a Bulk Data kick-off: each one the server receives starts a job', () => {
    const none = {};
    expect(isRetryableForward('GET', 'Patient/$export', '_type=Patient', none)).toBe(false);
    expect(isRetryableForward('GET', 'Group/g1/$export', '', none)).toBe(false);
    expect(isRetryableForward('GET', '$export', '', none)).toBe(false);
    expect(isRetryableForward('POST', 'Patient/$export', '', { 'if-none-exist': 'x' })).toBe(false);
    // The job's own URLs are reads like any other.
    expect(isRetryableForward('GET', 'BulkRequest/job-1', '', none)).toBe(true);
    expect(isRetryableForward('GET', '$export-poll-status', '_jobId=1', none)).toBe(true);
  });

  it('treats network errors, timeouts, 429 and 5xx as transient, other failures not', () => {
    const transient = (status?: number, code?: string) => isTransientFailure(status, code);
    expect([429, 500, 502, 503, 504].every((s) => transient(s))).toBe(true);
    expect([400, 401, 403, 404, 410, 422].some((s) => transient(s))).toBe(false);
    expect(
      ['ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'ERR_NETWORK'].every((c) => transient(undefined, c)),
    ).toBe(true);
    expect(['ERR_INVALID_URL', 'ERR_BAD_RESPONSE', undefined].some((c) => transient(undefined, c))).toBe(
      false,
    );
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-11-23T12:00:00Z');
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('Mon, 23 Nov 2026 12:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Mon, 23 Nov 2026 11:00:00 GMT', now)).toBe(0); // in the past: no wait
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
  });

  it('backs off exponentially with jitter between half and all of each step', () => {
    expect(retryDelay(0, settings, undefined, () => 0)).toBe(100);
    expect(retryDelay(0, settings, undefined, () => 1)).toBe(200);
    expect(retryDelay(1, settings, undefined, () => 0)).toBe(200);
    expect(retryDelay(2, settings, undefined, () => 1)).toBe(800);
  });

  it('caps each wait at the longest wait', () => {
    expect(retryDelay(2, { attempts: 5, maxWaitMs: 500, baseMs: 200 }, undefined, () => 1)).toBe(500);
  });

  it('honours Retry-After instead of the backoff, and gives up when it is longer than the longest wait', () => {
    expect(retryDelay(0, settings, 3000)).toBe(3000);
    expect(retryDelay(0, settings, 10_000)).toBe(10_000);
    expect(retryDelay(0, settings, 10_001)).toBeUndefined();
  });

  it('stops when the retries are used up', () => {
    expect(retryDelay(3, settings, undefined)).toBeUndefined();
    expect(retryDelay(0, { attempts: 0, maxWaitMs: 1000 }, undefined)).toBeUndefined();
  });
});
