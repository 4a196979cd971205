import { HttpException, HttpStatus } from '@nestjs/common';

import { codeForStatus, DomainError, ERROR_STATUS, ErrorCode, FieldErrors } from './domain-error';
import { fieldMessages } from './field-errors';

/** The JSON of every error: `{ statusCode, code, message, fields? }` (an HttpException's own extra members kept). */
export interface ErrorBody {
  statusCode: number;
  code: ErrorCode;
  /** A sentence; the list of every field message for field errors (as Nest's ValidationPipe). */
  message: string | string[];
  fields?: FieldErrors;
  [member: string]: unknown;
}

/**
 * What any transport needs to answer an error: the status, the JSON body, the lines a page shows,
 * and the headers' inputs. The API and browser filters render it; a FHIR OperationOutcome filter
 * would render the same description.
 */
export interface ErrorResponse {
  status: HttpStatus;
  code: ErrorCode;
  body: ErrorBody;
  /** One line per message, for a page. */
  messages: string[];
  /** Seconds for Retry-After, when the error says. */
  retryAfterSeconds?: number;
  /** The organization concerned, when the error says (a page links back to it). */
  organizationId?: string;
  /** Not a DomainError or an HttpException: a bug. Log it with its stack; the answer is generic. */
  unexpected: boolean;
}

const INTERNAL_MESSAGE = 'Internal server error';

/**
 * The one mapping from an exception to an answer. A DomainError answers the status of its code
 * (ERROR_STATUS); an HttpException keeps its status and body and gains the code of its status;
 * anything else is a generic 500 that shows nothing of the error.
 */
export function toErrorResponse(exception: unknown): ErrorResponse {
  if (exception instanceof DomainError) {
    const status = ERROR_STATUS[exception.code];
    // Our own fault (a 500: an unreadable secret, say) is for the operator's log, not the visitor.
    const message = exception.fields
      ? fieldMessages(exception.fields)
      : status >= HttpStatus.INTERNAL_SERVER_ERROR && status < HttpStatus.BAD_GATEWAY
        ? INTERNAL_MESSAGE
        : exception.message;
    return {
      status,
      code: exception.code,
      body: {
        statusCode: status,
        code: exception.code,
        message,
        ...(exception.fields ? { fields: exception.fields } : {}),
      },
      messages: linesOf(message),
      retryAfterSeconds: exception.retryAfterSeconds,
      organizationId: exception.organizationId,
      unexpected: false,
    };
  }
  if (exception instanceof HttpException) {
    const status = exception.getStatus() as HttpStatus;
    const response = exception.getResponse();
    const members: Record<string, unknown> =
      typeof response === 'string' ? { message: response } : { ...response };
    // A body that already names its code keeps it.
    const code = isErrorCode(members.code)
      ? members.code
      : status === HttpStatus.BAD_REQUEST && members.fields
        ? ErrorCode.ValidationFailed
        : codeForStatus(status);
    const message =
      typeof members.message === 'string' || Array.isArray(members.message)
        ? members.message
        : exception.message;
    delete members.statusCode;
    delete members.code;
    delete members.message;
    const body: ErrorBody = { statusCode: status, code, message, ...members };
    return { status, code, body, messages: linesOf(body.message), unexpected: false };
  }
  const status = HttpStatus.INTERNAL_SERVER_ERROR;
  return {
    status,
    code: ErrorCode.Internal,
    body: { statusCode: status, code: ErrorCode.Internal, message: INTERNAL_MESSAGE },
    messages: [INTERNAL_MESSAGE],
    unexpected: true,
  };
}

const ERROR_CODES = new Set<unknown>(Object.values(ErrorCode));
const isErrorCode = (value: unknown): value is ErrorCode => ERROR_CODES.has(value);

function linesOf(message: unknown): string[] {
  return Array.isArray(message) ? message.map(String) : [String(message)];
}
