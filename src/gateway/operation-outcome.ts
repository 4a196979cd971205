import type { OperationOutcome } from 'fhir/r4';

import { ErrorCode } from 'src/common/errors/domain-error';
import { ErrorResponse } from 'src/common/errors/error-response';
import { FhirClientError } from 'src/fhir-client/fhir-client.errors';

import { GatewayError, IssueType } from './gateway.errors';

/** The media type of every FHIR JSON answer (FHIR R4 §2.6.1 "Format"). */
export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

/** The system of `issue[].details.coding`: the gateway's own error code (src/common/README.md, "Codes"). */
export const ERROR_CODE_SYSTEM = 'urn:epic-connect:error-code';

/** The issue type of a status, when the error names none. */
const ISSUE_BY_STATUS: Readonly<Record<number, IssueType>> = {
  400: 'invalid',
  401: 'login',
  403: 'forbidden',
  404: 'not-found',
  405: 'not-supported',
  413: 'too-costly',
  429: 'throttled',
  502: 'transient',
  503: 'transient',
  504: 'timeout',
};

/**
 * The connection's own failures, in the words of the consoles' connection states. Through the
 * gateway they are 503 (not the JSON API's 409): its caller cannot fix them, an admin of the
 * organization can, and a later call may work.
 */
const CONNECTION_FAILURES: Partial<Record<ErrorCode, { issue: IssueType; state: string }>> = {
  [ErrorCode.NotConfigured]: { issue: 'no-store', state: 'Not configured' },
  [ErrorCode.NotConnected]: { issue: 'no-store', state: 'Not connected' },
  [ErrorCode.ReauthenticationRequired]: { issue: 'expired', state: 'Expired, needs re-authentication' },
  [ErrorCode.EpicUnavailable]: { issue: 'transient', state: 'Error' },
};

export interface OperationOutcomeAnswer {
  status: number;
  body: OperationOutcome;
}

/**
 * The gateway's rendering of an error that toErrorResponse (the common seam) described: the same
 * code and message, as an OperationOutcome, with the status of the gateway's transport:
 * - a GatewayError's own status (405, 413, 502, 504) where it sets one;
 * - the connection's failures 503, except a FHIR server that could not be reached (502) or did
 *   not answer in time (504);
 * - otherwise the code's status (401, 403, 429, 500…).
 */
export function toOperationOutcome(exception: unknown, described: ErrorResponse): OperationOutcomeAnswer {
  let status: number = described.status;
  let issue: IssueType | undefined;
  let diagnostics = described.messages.join(' ');
  const connection = CONNECTION_FAILURES[described.code];
  if (exception instanceof GatewayError) issue = exception.issue;
  if (exception instanceof GatewayError && exception.status !== undefined) {
    status = exception.status;
  } else if (exception instanceof FhirClientError && exception.network === 'timeout') {
    status = 504;
  } else if (exception instanceof FhirClientError && exception.network === 'unreachable') {
    status = 502;
  } else if (connection) {
    status = 503;
    issue = connection.issue;
    diagnostics = `Connection state: ${connection.state}. ${diagnostics}`;
  } else if (described.code === ErrorCode.FhirRequestFailed) {
    status = 400; // the request could not be sent as it is (a path that leaves the FHIR base)
  }
  issue ??= ISSUE_BY_STATUS[status] ?? (status >= 500 ? 'exception' : 'invalid');
  return {
    status,
    body: {
      resourceType: 'OperationOutcome',
      issue: [
        {
          severity: 'error',
          code: issue,
          details: { coding: [{ system: ERROR_CODE_SYSTEM, code: described.code }] },
          diagnostics,
        },
      ],
    },
  };
}
