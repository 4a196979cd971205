import type { OperationOutcome } from 'fhir/r4';

/** What went wrong with a FHIR call, in the terms a caller acts on. */
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

/**
 * A failed FHIR call. `message` is safe to show (never a token or Epic's raw body); for `Request`
 * errors it carries the OperationOutcome's text.
 */
export class FhirClientError extends Error {
  readonly organizationId?: string;
  /** Epic's HTTP status, when it answered. */
  readonly status?: number;
  readonly operationOutcome?: OperationOutcome;
  /** Seconds Epic asked to wait (Retry-After), when it did. */
  readonly retryAfterSeconds?: number;

  constructor(
    readonly kind: FhirErrorKind,
    message: string,
    options: {
      organizationId?: string;
      status?: number;
      operationOutcome?: OperationOutcome;
      retryAfterSeconds?: number;
      cause?: unknown;
    } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'FhirClientError';
    this.organizationId = options.organizationId;
    this.status = options.status;
    this.operationOutcome = options.operationOutcome;
    this.retryAfterSeconds = options.retryAfterSeconds;
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
