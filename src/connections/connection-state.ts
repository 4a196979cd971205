/**
 * The one definition of an Epic connection's state, derived from stored facts and the clock.
 * `deriveConnectionState` is used for one connection at a time (status JSON, pages,
 * notifications); `connectionStateSql` is the same rules as a SQL expression, for counting and
 * filtering thousands of organizations in the database. A test runs the table of cases through
 * both against PostgreSQL, so the two cannot drift apart.
 */

export enum ConnectionState {
  /** No Epic client registered (client ID or FHIR base URL missing). */
  NotConfigured = 'not_configured',
  /** Registered, never connected, or disconnected on purpose. */
  NotConnected = 'not_connected',
  /** A valid token: refreshable, or with time left beyond the warning window. */
  Connected = 'connected',
  /** Ends within the warning window and cannot be refreshed past it. */
  Expiring = 'expiring',
  /** Ended and cannot be refreshed, or Epic rejected the refresh. */
  Expired = 'expired',
  /** The last call or refresh failed transiently and has not recovered. */
  Error = 'error',
}

export const CONNECTION_STATES = Object.values(ConnectionState);

/** States an admin must act on or should know about (notifications, "need attention"). */
export const ATTENTION_STATES: readonly ConnectionState[] = [
  ConnectionState.Expiring,
  ConnectionState.Expired,
  ConnectionState.Error,
];

export interface ConnectionFacts {
  /** Client ID and FHIR base URL are registered. */
  configured: boolean;
  /** The stored credential, if any. */
  credential: {
    /** When the access token ends. */
    expiresAt: Date;
    refreshable: boolean;
    /** When the refresh token ends, where the server said so (Epic usually does not). */
    refreshExpiresAt: Date | null;
  } | null;
  /** organization.last_error: set by failures, cleared by the next success. */
  lastError: string | null;
  /** organization.token_expiry: kept when dead tokens are cleared, emptied by a disconnect. */
  tokenExpiry: Date | null;
}

/**
 * The state of one connection at `now`, with `warningMs` (EXPIRY_WARNING_MINUTES) of notice.
 * Order matters: expired beats error (nothing to retry), error beats expiring (act now).
 */
export function deriveConnectionState(facts: ConnectionFacts, now: Date, warningMs: number): ConnectionState {
  if (!facts.configured) return ConnectionState.NotConfigured;
  const credential = facts.credential;
  if (!credential) {
    // Tokens cleared because they died (refresh rejected, expired without refresh token) keep
    // tokenExpiry and lastError; a disconnect clears tokenExpiry.
    return facts.lastError !== null && facts.tokenExpiry !== null
      ? ConnectionState.Expired
      : ConnectionState.NotConnected;
  }
  const end = credential.refreshable ? credential.refreshExpiresAt : credential.expiresAt;
  if (end !== null && end.getTime() <= now.getTime()) return ConnectionState.Expired;
  if (facts.lastError !== null) return ConnectionState.Error;
  if (end !== null && end.getTime() <= now.getTime() + warningMs) return ConnectionState.Expiring;
  return ConnectionState.Connected;
}

/**
 * When the connection stops working without someone signing in again: the access token's end
 * without a refresh token, the refresh token's end where known, else null (refreshes indefinitely).
 */
export function connectionEnd(credential: ConnectionFacts['credential']): Date | null {
  if (!credential) return null;
  return credential.refreshable ? credential.refreshExpiresAt : credential.expiresAt;
}

/**
 * `deriveConnectionState` as SQL over `organization o LEFT JOIN epic_credential c` (the
 * organization's own credential). `now` and `warnUntil` are placeholders such as `$1`, `$2`.
 */
export function connectionStateSql(now: string, warnUntil: string, o = 'o', c = 'c'): string {
  const end = `(CASE WHEN ${c}.renewable THEN ${c}.refresh_expires_at ELSE ${c}.expires_at END)`;
  return `(CASE
    WHEN ${o}.epic_client_id IS NULL OR ${o}.fhir_base_url IS NULL THEN '${ConnectionState.NotConfigured}'
    WHEN ${c}.id IS NULL THEN
      CASE WHEN ${o}.last_error IS NOT NULL AND ${o}.token_expiry IS NOT NULL
           THEN '${ConnectionState.Expired}' ELSE '${ConnectionState.NotConnected}' END
    WHEN ${end} IS NOT NULL AND ${end} <= ${now} THEN '${ConnectionState.Expired}'
    WHEN ${o}.last_error IS NOT NULL THEN '${ConnectionState.Error}'
    WHEN ${end} IS NOT NULL AND ${end} <= ${warnUntil} THEN '${ConnectionState.Expiring}'
    ELSE '${ConnectionState.Connected}'
  END)`;
}
