/** Why an Epic authorization step failed; filters map codes to a page or a JSON status. */
export enum EpicAuthErrorCode {
  DiscoveryFailed = 'DISCOVERY_FAILED',
  DiscoveryIncompatible = 'DISCOVERY_INCOMPATIBLE',
  NotConfigured = 'NOT_CONFIGURED',
  /** The callback's state is missing, unknown, already used, expired or from another session. */
  InvalidState = 'INVALID_STATE',
  /** The client secret was not sent: the token endpoint moved to another origin (type it again). */
  ClientSecretRefused = 'CLIENT_SECRET_REFUSED',
  /** The callback is malformed: no code, or an `iss` that is not the organization's server (400). */
  InvalidCallback = 'INVALID_CALLBACK',
  /** Epic answered the authorization with an error (e.g. access_denied). */
  AuthorizationDenied = 'AUTHORIZATION_DENIED',
  TokenExchangeFailed = 'TOKEN_EXCHANGE_FAILED',
  IdTokenInvalid = 'ID_TOKEN_INVALID',
  /** There is no stored connection (never connected, disconnected, or replaced meanwhile). */
  NotConnected = 'NOT_CONNECTED',
  /** The stored tokens are dead (refresh rejected, or expired without a refresh token). */
  ReauthenticationRequired = 'REAUTHENTICATION_REQUIRED',
  /** An EHR launch with a missing or unknown iss, or no launch token: 400, no redirect anywhere. */
  LaunchRefused = 'LAUNCH_REFUSED',
  /** Epic could not be reached or failed transiently; the stored tokens were kept. */
  EpicUnavailable = 'EPIC_UNAVAILABLE',
}

/**
 * A coded EpicAuth failure. `message` is written for an admin to act on and is safe to show;
 * the upstream error stays in `cause` for the log, never for the user (Epic bodies can echo codes).
 */
export class EpicAuthError extends Error {
  /** The organization concerned, when known: error pages link back to it. */
  readonly organizationId?: string;

  constructor(
    readonly code: EpicAuthErrorCode,
    message: string,
    options?: { cause?: unknown; organizationId?: string },
  ) {
    super(message, { cause: options?.cause });
    this.organizationId = options?.organizationId;
    this.name = 'EpicAuthError';
  }
}
