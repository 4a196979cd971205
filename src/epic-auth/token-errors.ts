/**
 * What a failed call to Epic's token endpoint means, read from openid-client's errors: an OAuth
 * error body (`ResponseBodyError.error`), an HTTP status, a timeout, or a network failure.
 * Messages are written for an admin to act on; Epic's own text stays in the log.
 */

interface TokenErrorShape {
  error?: unknown;
  status?: unknown;
  name?: unknown;
  cause?: { status?: unknown; name?: unknown };
}

/** The OAuth error code of a token response (RFC 6749 §5.2), when Epic sent one. */
export function oauthErrorCode(error: unknown): string | undefined {
  const e = error as TokenErrorShape | undefined;
  return typeof e?.error === 'string' ? e.error.slice(0, 60) : undefined;
}

function httpStatus(error: unknown): number | undefined {
  const e = error as TokenErrorShape | undefined;
  if (typeof e?.status === 'number') return e.status;
  return typeof e?.cause?.status === 'number' ? e.cause.status : undefined;
}

function timedOut(error: unknown): boolean {
  const e = error as TokenErrorShape | undefined;
  const names = [e?.name, e?.cause?.name];
  return names.includes('TimeoutError') || names.includes('AbortError');
}

/**
 * What went wrong when the token endpoint gave no OAuth error: it timed out, answered an HTTP error
 * without one (a proxy's page), answered something openid-client could not use, or could not be
 * reached at all. Only the last is a network failure.
 */
type TransientKind = 'timeout' | 'http' | 'invalid_response' | 'network';

function transientKind(error: unknown): TransientKind {
  if (timedOut(error)) return 'timeout';
  if (httpStatus(error) !== undefined) return 'http';
  // openid-client's OperationProcessingError (and oauth4webapi's): it got an answer and refused it.
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && code.startsWith('OAUTH_')) return 'invalid_response';
  return 'network';
}

function transientCode(error: unknown): string {
  const kind = transientKind(error);
  return kind === 'http' ? `http_${httpStatus(error)}` : kind;
}

function transientMessage(error: unknown): string {
  switch (transientKind(error)) {
    case 'timeout':
      return "Epic's token endpoint did not answer in time. Try again later.";
    case 'http':
      return `Epic's token endpoint answered HTTP ${httpStatus(error)} without an OAuth error. Try again later.`;
    case 'invalid_response':
      return "Epic's token endpoint answered, but not with a usable token response (the details are in the service log). Try again later.";
    case 'network':
      return "Epic's token endpoint could not be reached (a network error). Try again later.";
  }
}

/** What to check when Epic answers invalid_client, whichever way the client authenticates. */
const CHECK_CLIENT =
  'check the client ID and its credentials (the secret, or with private_key_jwt the JWK Set URL registered at Epic, which Epic must be able to fetch), and that Epic has finished syncing the app (this can take hours).';

/** An admin-actionable message for a failed authorization-code exchange. */
export function describeTokenError(error: unknown): string {
  const code = oauthErrorCode(error);
  switch (code) {
    case undefined:
      return transientMessage(error);
    case 'invalid_client':
      return `Epic rejected the client credentials (invalid_client): ${CHECK_CLIENT}`;
    case 'invalid_grant':
      return 'Epic rejected the authorization code (invalid_grant): it expired or was already used. Connect again.';
    case 'unauthorized_client':
      return 'Epic does not allow this client to use this grant (unauthorized_client): check the app registration at Epic.';
    default:
      return `Epic refused the token request (${code}).`;
  }
}

/** Why a credential can no longer be used without an admin or patient signing in again. */
export type TerminalReason =
  | 'invalid_grant'
  | 'invalid_client'
  | 'unauthorized_client'
  | 'no_refresh_token'
  | 'access_token_rejected'
  | 'undecryptable'
  | 'registration_changed';

export type RefreshFailure =
  | { kind: 'terminal'; reason: TerminalReason; code: string; message: string }
  | { kind: 'transient'; code: string; message: string };

const REAUTHENTICATE = 'Re-authenticate to reconnect.';

/** Messages for credentials that died, by reason: what happened, and that someone must sign in again. */
export const TERMINAL_MESSAGES: Record<TerminalReason, string> = {
  invalid_grant: `Epic rejected the refresh token (invalid_grant): it expired or was revoked (for example when access was removed in MyChart or at Epic). ${REAUTHENTICATE}`,
  invalid_client: `Epic rejected the client credentials while refreshing (invalid_client): ${CHECK_CLIENT} ${REAUTHENTICATE}`,
  unauthorized_client: `Epic no longer allows this client to refresh tokens (unauthorized_client): check the app registration at Epic. ${REAUTHENTICATE}`,
  no_refresh_token: `The Epic access token expired and this connection has no refresh token (the app is not registered at Epic for persistent access). ${REAUTHENTICATE}`,
  access_token_rejected: `Epic rejected the access token (HTTP 401) and it could not be renewed. ${REAUTHENTICATE}`,
  undecryptable: `The stored Epic tokens can no longer be decrypted (their encryption key was removed from ENCRYPTION_KEYS). ${REAUTHENTICATE}`,
  registration_changed: `These Epic tokens were issued by another FHIR server than the one the organization is now registered with, so they are no longer sent anywhere. ${REAUTHENTICATE}`,
};

/** A backend-service token Epic refused although it was just obtained: the mapped user lacks access. */
export const BACKEND_TOKEN_REJECTED =
  "Epic rejected a newly obtained backend-service access token (HTTP 401): check the Epic user this client is mapped to and that user's security at Epic, then Connect again.";

/** The OAuth errors that mean the grant or the client is dead (RFC 6749 §5.2; docs/epic-and-smart.md §5). */
const DEAD_GRANT_ERRORS = new Set(['invalid_grant', 'invalid_client', 'unauthorized_client']);

/**
 * Classifies a failed refresh-token request by the OAuth error in a well-formed JSON error body
 * (RFC 6749 §5.2), not by the status alone: `invalid_grant`, `invalid_client` or
 * `unauthorized_client` with any 4xx but 429 means the stored tokens are dead (servers answer them
 * with 400, 401 or 403). Anything else keeps the tokens (a failed refresh never erases good
 * tokens): a timeout, a network error, 5xx, 429 (whatever its body says: a rate limiter or WAF in
 * front of the server must not wipe connections), a 4xx without an OAuth JSON body (a proxy's HTML
 * page), an unusable 200, and other OAuth errors such as `invalid_request` or `invalid_scope`,
 * which point at a problem to fix rather than at dead tokens.
 */
export function classifyRefreshFailure(error: unknown): RefreshFailure {
  const code = oauthErrorCode(error);
  const status = httpStatus(error);
  const rejected = status === undefined || (status >= 400 && status < 500 && status !== 429);
  if (code !== undefined && DEAD_GRANT_ERRORS.has(code) && rejected) {
    const reason = code as 'invalid_grant' | 'invalid_client' | 'unauthorized_client';
    return { kind: 'terminal', reason, code, message: TERMINAL_MESSAGES[reason] };
  }
  if (code !== undefined) {
    return {
      kind: 'transient',
      code,
      message:
        status === 429 || (status !== undefined && status >= 500) || code === 'temporarily_unavailable'
          ? `Epic's token endpoint is unavailable (${code}${status ? `, HTTP ${status}` : ''}). Try again later; the stored tokens were kept.`
          : `Epic refused to refresh the access token (${code}); the stored tokens were kept. Check the app registration at Epic.`,
    };
  }
  return { kind: 'transient', code: transientCode(error), message: transientMessage(error) };
}

/**
 * A failed client_credentials request (a backend-service connection, docs/epic-and-smart.md §9). There is
 * no grant to lose, so nothing here clears a token: the message says what to fix, and the next
 * attempt (a FHIR call, the scheduled check, or Connect) tries again.
 */
export function describeClientCredentialsFailure(error: unknown): { code: string; message: string } {
  const code = oauthErrorCode(error);
  switch (code) {
    case 'unauthorized_client':
      return {
        code,
        message:
          "Epic refused the backend-service token (unauthorized_client): the organization's Epic administrator has not mapped this client ID to an Epic user yet. Ask them to map it in the Backend Systems app's settings at Epic; no sign-in is needed, and the connection recovers at the next attempt after that.",
      };
    case 'invalid_client':
      return {
        code,
        message: `Epic rejected the backend-service client assertion (invalid_client): ${CHECK_CLIENT}`,
      };
    case undefined:
      return { code: transientCode(error), message: transientMessage(error) };
    default:
      return { code, message: `Epic refused the backend-service token request (${code}).` };
  }
}
