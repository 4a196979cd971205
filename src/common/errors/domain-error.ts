import { HttpStatus } from '@nestjs/common';

/**
 * Every code the service answers an error with (`code` in JSON), for every module. A code says
 * what happened in terms a caller acts on; its HTTP status is in ERROR_STATUS, right below.
 * The list and the table are documented in src/common/README.md.
 */
export enum ErrorCode {
  // Request-level codes: Nest's HttpExceptions get them from their status (codeForStatus).
  /** The input broke a rule: `fields` names each field and its messages. */
  ValidationFailed = 'VALIDATION_FAILED',
  /** Another 4xx a request can earn (no rule of ours names it more precisely). */
  BadRequest = 'BAD_REQUEST',
  Unauthenticated = 'UNAUTHENTICATED',
  Forbidden = 'FORBIDDEN',
  NotFound = 'NOT_FOUND',
  Conflict = 'CONFLICT',
  RateLimited = 'RATE_LIMITED',
  /** Unexpected: the cause is in the log, never in the answer. */
  Internal = 'INTERNAL_ERROR',

  // Connections to Epic and other SMART on FHIR servers (EpicAuth, FhirClient).
  /** No client registration (client ID and FHIR base URL) for the organization. */
  NotConfigured = 'NOT_CONFIGURED',
  /** There is no stored connection (never connected, disconnected, or replaced meanwhile). */
  NotConnected = 'NOT_CONNECTED',
  /** The stored tokens are dead (refresh rejected, or expired without a refresh token). */
  ReauthenticationRequired = 'REAUTHENTICATION_REQUIRED',
  /** The server could not be reached or failed transiently (network, timeout, 5xx, 429); tokens kept. */
  EpicUnavailable = 'EPIC_UNAVAILABLE',
  DiscoveryFailed = 'DISCOVERY_FAILED',
  DiscoveryIncompatible = 'DISCOVERY_INCOMPATIBLE',
  /** The callback's state is missing, unknown, already used, expired or from another session. */
  InvalidState = 'INVALID_STATE',
  /** The client secret was not sent: the token endpoint moved to another origin (type it again). */
  ClientSecretRefused = 'CLIENT_SECRET_REFUSED',
  /** The callback is malformed: no code, or an `iss` that is not the organization's server. */
  InvalidCallback = 'INVALID_CALLBACK',
  /** The server answered the authorization with an error (e.g. access_denied). */
  AuthorizationDenied = 'AUTHORIZATION_DENIED',
  TokenExchangeFailed = 'TOKEN_EXCHANGE_FAILED',
  IdTokenInvalid = 'ID_TOKEN_INVALID',
  /** An EHR launch with a missing or unknown iss, or no launch token: no redirect anywhere. */
  LaunchRefused = 'LAUNCH_REFUSED',
  /** The FHIR server answered a request with a 4xx (other than 401); the connection works. */
  FhirRequestFailed = 'FHIR_REQUEST_FAILED',

  // Secrets at rest (Crypto).
  /** A stored secret could not be decrypted: a key missing from ENCRYPTION_KEYS, or damaged data. */
  SecretUnreadable = 'SECRET_UNREADABLE',
}

/**
 * The HTTP status of each code, on every transport. 409: the request is fine but the
 * organization's state forbids it until an admin acts; 502: the upstream server answered with
 * something unusable; 503: it could not be reached, try again later.
 */
export const ERROR_STATUS: Readonly<Record<ErrorCode, HttpStatus>> = {
  [ErrorCode.ValidationFailed]: HttpStatus.BAD_REQUEST,
  [ErrorCode.BadRequest]: HttpStatus.BAD_REQUEST,
  [ErrorCode.Unauthenticated]: HttpStatus.UNAUTHORIZED,
  [ErrorCode.Forbidden]: HttpStatus.FORBIDDEN,
  [ErrorCode.NotFound]: HttpStatus.NOT_FOUND,
  [ErrorCode.Conflict]: HttpStatus.CONFLICT,
  [ErrorCode.RateLimited]: HttpStatus.TOO_MANY_REQUESTS,
  [ErrorCode.Internal]: HttpStatus.INTERNAL_SERVER_ERROR,

  [ErrorCode.NotConfigured]: HttpStatus.CONFLICT,
  [ErrorCode.NotConnected]: HttpStatus.CONFLICT,
  [ErrorCode.ReauthenticationRequired]: HttpStatus.CONFLICT,
  [ErrorCode.ClientSecretRefused]: HttpStatus.CONFLICT,
  [ErrorCode.InvalidState]: HttpStatus.BAD_REQUEST,
  [ErrorCode.InvalidCallback]: HttpStatus.BAD_REQUEST,
  [ErrorCode.AuthorizationDenied]: HttpStatus.BAD_REQUEST,
  [ErrorCode.LaunchRefused]: HttpStatus.BAD_REQUEST,
  [ErrorCode.DiscoveryFailed]: HttpStatus.BAD_GATEWAY,
  [ErrorCode.DiscoveryIncompatible]: HttpStatus.BAD_GATEWAY,
  [ErrorCode.TokenExchangeFailed]: HttpStatus.BAD_GATEWAY,
  [ErrorCode.IdTokenInvalid]: HttpStatus.BAD_GATEWAY,
  [ErrorCode.FhirRequestFailed]: HttpStatus.BAD_GATEWAY,
  [ErrorCode.EpicUnavailable]: HttpStatus.SERVICE_UNAVAILABLE,

  [ErrorCode.SecretUnreadable]: HttpStatus.INTERNAL_SERVER_ERROR,
};

/**
 * The request-level codes (the first group above): what Nest's HttpExceptions map to. The others
 * are domain failures: logged with their cause, and shown on a page titled for the EHR connection.
 */
export const REQUEST_CODES: ReadonlySet<ErrorCode> = new Set([
  ErrorCode.ValidationFailed,
  ErrorCode.BadRequest,
  ErrorCode.Unauthenticated,
  ErrorCode.Forbidden,
  ErrorCode.NotFound,
  ErrorCode.Conflict,
  ErrorCode.RateLimited,
  ErrorCode.Internal,
]);

/** The request-level code of a status (an HttpException's); see ErrorCode's first group. */
export function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 400:
      // VALIDATION_FAILED always names its fields; a 400 without them (a malformed body, a bad
      // path parameter, control characters) is a plain bad request.
      return ErrorCode.BadRequest;
    case 401:
      return ErrorCode.Unauthenticated;
    case 403:
      return ErrorCode.Forbidden;
    case 404:
      return ErrorCode.NotFound;
    case 409:
      return ErrorCode.Conflict;
    case 429:
      return ErrorCode.RateLimited;
    default:
      return status >= 500 ? ErrorCode.Internal : ErrorCode.BadRequest;
  }
}

/** Messages per form field (`clientId`, or a path such as `address.city`), in the order found. */
export type FieldErrors = Record<string, string[]>;

export interface DomainErrorOptions {
  /** The underlying failure: logged, never shown (upstream bodies can echo codes or tokens). */
  cause?: unknown;
  /** The organization concerned, when known: error pages link back to it. */
  organizationId?: string;
  /** For field errors: the messages of each field (the JSON `fields`, a form's messages). */
  fields?: FieldErrors;
  /** Seconds the caller should wait before retrying: sent as Retry-After. */
  retryAfterSeconds?: number;
}

/**
 * A coded failure any module can throw. `message` is written for the person who acts on it and is
 * safe to show; the filters answer it with the status of its code (ERROR_STATUS): JSON on API
 * routes, a page on browser routes (src/common/filters). Controllers never translate it.
 */
export class DomainError extends Error {
  readonly code: ErrorCode;
  readonly organizationId?: string;
  readonly fields?: FieldErrors;
  readonly retryAfterSeconds?: number;

  constructor(code: ErrorCode, message: string, options: DomainErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DomainError';
    this.code = code;
    this.organizationId = options.organizationId;
    this.fields = options.fields;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}
