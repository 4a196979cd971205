import type { OperationOutcome } from 'fhir/r4';

import { DomainError, ErrorCode } from 'src/common/errors/domain-error';

/** What went wrong with a FHIR call, in the terms a caller acts on. Each kind is one ErrorCode. */
export enum FhirErrorKind {
  /** No stored connection: an admin (or the patient) must connect first. */
  NotConnected = 'not_connected',
  /** The tokens are dead and were cleared: sign in at Epic again. */
  ReauthenticationRequired = 'reauthentication_required',
  /** Epic could not be reached or failed transiently (network, timeout, 5xx, 429); tokens kept. */
  Unavailable = 'unavailable',
  /** Epic answered the request with a FHIR error (4xx other than 401); the connection is fine. */
  Request = 'request',
}

/** The code of each kind: `not_connected` is the NOT_CONNECTED that EpicAuth throws, and so on. */
export const FHIR_ERROR_CODE: Readonly<Record<FhirErrorKind, ErrorCode>> = {
  [FhirErrorKind.NotConnected]: ErrorCode.NotConnected,
  [FhirErrorKind.ReauthenticationRequired]: ErrorCode.ReauthenticationRequired,
  [FhirErrorKind.Unavailable]: ErrorCode.EpicUnavailable,
  [FhirErrorKind.Request]: ErrorCode.FhirRequestFailed,
};

/**
 * A failed FHIR call. `message` is safe to show (never a token or Epic's raw body); for `Request`
 * errors it carries the OperationOutcome's text. Its `code` follows from `kind` (FHIR_ERROR_CODE);
 * escaping a controller, it answers that code's status (src/common/filters).
 */
export class FhirClientError extends DomainError {
  /** Epic's HTTP status, when it answered (not the status this service answers with). */
  readonly status?: number;
  readonly operationOutcome?: OperationOutcome;
  /**
   * `unavailable` without an answer from the FHIR server: whether it did not answer in time or
   * could not be reached at all (a gateway answers 504 or 502).
   */
  readonly network?: 'timeout' | 'unreachable';

  constructor(
    readonly kind: FhirErrorKind,
    message: string,
    options: {
      organizationId?: string;
      status?: number;
      operationOutcome?: OperationOutcome;
      /** Seconds Epic asked to wait (Retry-After), when it did. */
      retryAfterSeconds?: number;
      network?: 'timeout' | 'unreachable';
      cause?: unknown;
    } = {},
  ) {
    super(FHIR_ERROR_CODE[kind], message, {
      cause: options.cause,
      organizationId: options.organizationId,
      retryAfterSeconds: options.retryAfterSeconds,
    });
    this.name = 'FhirClientError';
    this.status = options.status;
    this.operationOutcome = options.operationOutcome;
    this.network = options.network;
  }
}

/** The readable text of an OperationOutcome: each issue's details.text or diagnostics, joined. */
export function operationOutcomeText(body: unknown): string | undefined {
  const outcome = body as Partial<OperationOutcome> | undefined;
  if (outcome?.resourceType !== 'OperationOutcome' || !Array.isArray(outcome.issue)) return undefined;
  const texts = outcome.issue
    .map((issue) => issue.details?.text ?? issue.diagnostics ?? issue.code)
    .filter((text): text is string => typeof text === 'string' && text.length > 0);
  return texts.length > 0 ? texts.join('; ').slice(0, 500) : undefined;
}
