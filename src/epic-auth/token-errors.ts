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

function transientMessage(error: unknown): string {
  if (timedOut(error)) return "Epic's token endpoint did not answer in time. Try again later.";
  const status = httpStatus(error);
  if (status !== undefined) return `Epic's token endpoint answered HTTP ${status}. Try again later.`;
  return "Epic's token endpoint could not be reached or sent an unreadable answer. Try again later.";
}

/** An admin-actionable message for a failed authorization-code exchange. */
export function describeTokenError(error: unknown): string {
  const code = oauthErrorCode(error);
  switch (code) {
    case undefined:
      return transientMessage(error);
    case 'invalid_client':
      return 'Epic rejected the client credentials (invalid_client): check the client ID and secret, and that Epic has finished syncing the app (this can take hours).';
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
  | 'oauth_error'
  | 'no_refresh_token'
  | 'access_token_rejected'
  | 'undecryptable';

export type RefreshFailure =
  | { kind: 'terminal'; reason: TerminalReason; code: string; message: string }
  | { kind: 'transient'; code: string; message: string };

const REAUTHENTICATE = 'Re-authenticate to reconnect.';

/** Messages for credentials that died, by reason: what happened, and that someone must sign in again. */
export const TERMINAL_MESSAGES: Record<TerminalReason, string> = {
  invalid_grant: `Epic rejected the refresh token (invalid_grant): it expired or was revoked (for example when access was removed in MyChart or at Epic). ${REAUTHENTICATE}`,
  invalid_client: `Epic rejected the client credentials while refreshing (invalid_client): check the client ID and secret (Epic can take hours to sync a new one). ${REAUTHENTICATE}`,
  unauthorized_client: `Epic no longer allows this client to refresh tokens (unauthorized_client): check the app registration at Epic. ${REAUTHENTICATE}`,
  oauth_error: `Epic refused to refresh the access token. ${REAUTHENTICATE}`,
  no_refresh_token: `The Epic access token expired and this connection has no refresh token (the app is not registered at Epic for persistent access). ${REAUTHENTICATE}`,
  access_token_rejected: `Epic rejected the access token (HTTP 401) and it could not be renewed. ${REAUTHENTICATE}`,
  undecryptable: `The stored Epic tokens can no longer be decrypted (their encryption key was removed from ENCRYPTION_KEYS). ${REAUTHENTICATE}`,
};

/** OAuth errors that say "try again later" rather than "this grant is dead" (RFC 6749 §4.1.2.1). */
const RETRYABLE_OAUTH_ERRORS = new Set(['temporarily_unavailable', 'server_error']);

/**
 * Classifies a failed refresh-token request. Terminal: Epic answered with an OAuth error about the
 * grant or the client, so the stored tokens are dead. Everything else (timeout, network error,
 * 5xx, 429, an unreadable body, a bare 4xx from a proxy) is transient: the tokens are kept.
 */
export function classifyRefreshFailure(error: unknown): RefreshFailure {
  const code = oauthErrorCode(error);
  if (code !== undefined && !RETRYABLE_OAUTH_ERRORS.has(code)) {
    const reason: TerminalReason =
      code === 'invalid_grant' || code === 'invalid_client' || code === 'unauthorized_client'
        ? code
        : 'oauth_error';
    const message =
      reason === 'oauth_error'
        ? `Epic refused to refresh the access token (${code}). ${REAUTHENTICATE}`
        : TERMINAL_MESSAGES[reason];
    return { kind: 'terminal', reason, code, message };
  }
  if (code !== undefined) {
    return {
      kind: 'transient',
      code,
      message: `Epic's token endpoint is unavailable (${code}). Try again later.`,
    };
  }
  const status = httpStatus(error);
  return {
    kind: 'transient',
    code: timedOut(error) ? 'timeout' : status !== undefined ? `http_${status}` : 'network',
    message: transientMessage(error),
  };
}
