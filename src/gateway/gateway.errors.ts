import { DomainError, DomainErrorOptions, ErrorCode } from 'src/common/errors/domain-error';

/** FHIR's issue types (FHIR R4 ValueSet issue-type) that the gateway's own answers use. */
export type IssueType =
  | 'invalid'
  | 'login'
  | 'forbidden'
  | 'not-found'
  | 'not-supported'
  | 'too-costly'
  | 'throttled'
  | 'exception'
  | 'transient'
  | 'timeout'
  | 'expired'
  | 'no-store';

/**
 * A failure the gateway itself answers, as a FHIR OperationOutcome. Its `code` is one of the common
 * codes (src/common/README.md); `status` is set where the gateway's transport answers otherwise than
 * the code's JSON status (413, 405, 502, 504).
 */
export class GatewayError extends DomainError {
  readonly status?: number;
  readonly issue?: IssueType;

  constructor(
    code: ErrorCode,
    message: string,
    options: DomainErrorOptions & { status?: number; issue?: IssueType } = {},
  ) {
    super(code, message, options);
    this.name = 'GatewayError';
    this.status = options.status;
    this.issue = options.issue;
  }
}
