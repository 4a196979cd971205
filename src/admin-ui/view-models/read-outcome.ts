import { DomainError, ErrorCode } from 'src/common/errors/domain-error';

/**
 * A FHIR read that part of a page shows: what was read, or why it could not be (the page says so
 * in that place and shows the rest).
 */
export type ReadOutcome<T> = { ok: true; value: T } | { ok: false; error: DomainError };

/**
 * The failures of a FHIR read that a page shows in place (FhirClient rejects with one of these):
 * no connection, dead tokens, the server unreachable, or the server refusing the request.
 * Anything else (a bug, an unreadable secret) is not the page's to explain: it goes to the
 * error page.
 */
export const SHOWN_IN_PLACE: ReadonlySet<ErrorCode> = new Set([
  ErrorCode.NotConnected,
  ErrorCode.ReauthenticationRequired,
  ErrorCode.EpicUnavailable,
  ErrorCode.FhirRequestFailed,
]);

/** Runs `read`: its value, or a failure the page shows in place, as data; anything else is rethrown. */
export async function readOutcome<T>(read: () => Promise<T>): Promise<ReadOutcome<T>> {
  try {
    return { ok: true, value: await read() };
  } catch (error) {
    if (error instanceof DomainError && SHOWN_IN_PLACE.has(error.code)) return { ok: false, error };
    throw error;
  }
}
