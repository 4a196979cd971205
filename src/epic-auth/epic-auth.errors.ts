import { DomainError, ErrorCode } from 'src/common/errors/domain-error';

/**
 * Why an Epic authorization step failed: the ErrorCode members EpicAuth throws, under the names it
 * has always used (`EpicAuthErrorCode.NotConnected === ErrorCode.NotConnected`). What each means
 * and its HTTP status: ErrorCode and ERROR_STATUS in src/common/errors/domain-error.ts.
 */
export const EpicAuthErrorCode = {
  DiscoveryFailed: ErrorCode.DiscoveryFailed,
  DiscoveryIncompatible: ErrorCode.DiscoveryIncompatible,
  NotConfigured: ErrorCode.NotConfigured,
  InvalidState: ErrorCode.InvalidState,
  ClientSecretRefused: ErrorCode.ClientSecretRefused,
  InvalidCallback: ErrorCode.InvalidCallback,
  AuthorizationDenied: ErrorCode.AuthorizationDenied,
  TokenExchangeFailed: ErrorCode.TokenExchangeFailed,
  IdTokenInvalid: ErrorCode.IdTokenInvalid,
  NotConnected: ErrorCode.NotConnected,
  ReauthenticationRequired: ErrorCode.ReauthenticationRequired,
  LaunchRefused: ErrorCode.LaunchRefused,
  EpicUnavailable: ErrorCode.EpicUnavailable,
} as const;
export type EpicAuthErrorCode = (typeof EpicAuthErrorCode)[keyof typeof EpicAuthErrorCode];

/**
 * A coded EpicAuth failure. `message` is written for an admin to act on and is safe to show;
 * the upstream error stays in `cause` for the log, never for the user (Epic bodies can echo codes).
 * The global filters answer it (src/common/filters): a page on browser routes, JSON on API routes.
 */
export class EpicAuthError extends DomainError {
  declare readonly code: EpicAuthErrorCode;

  constructor(
    code: EpicAuthErrorCode,
    message: string,
    options?: { cause?: unknown; organizationId?: string },
  ) {
    super(code, message, { cause: options?.cause, organizationId: options?.organizationId });
    this.name = 'EpicAuthError';
  }
}
