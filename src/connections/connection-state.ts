/**
 * The one definition of an Epic connection's state, derived from stored facts and the clock.
 * `deriveConnectionState` is used for one connection at a time (status JSON, pages,
 * notifications); `connectionStateSql` is the same rules as a SQL expression, for counting and
 * filtering thousands of organizations in the database. A test runs the table of cases through
 * both against PostgreSQL, so the two cannot drift apart.
 */

import { ConnectionFacts, ConnectionState } from './connections.types';

export type { ConnectionFacts };
export { ConnectionState };

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
 * `deriveConnectionState` as SQL over `organization o LEFT JOIN organization_connection s LEFT
 * JOIN epic_credential c` (the organization's own connection and credential). `now` and
 * `warnUntil` are placeholders such as `$1`, `$2`.
 */
export function connectionStateSql(now: string, warnUntil: string, o = 'o', c = 'c', s = 's'): string {
  const end = `(CASE WHEN ${c}.renewable THEN ${c}.refresh_expires_at ELSE ${c}.expires_at END)`;
  return `(CASE
    WHEN ${o}.epic_client_id IS NULL OR ${o}.fhir_base_url IS NULL THEN '${ConnectionState.NotConfigured}'
    WHEN ${c}.id IS NULL THEN
      CASE WHEN ${s}.last_error IS NOT NULL AND ${s}.token_expiry IS NOT NULL
           THEN '${ConnectionState.Expired}' ELSE '${ConnectionState.NotConnected}' END
    WHEN ${end} IS NOT NULL AND ${end} <= ${now} THEN '${ConnectionState.Expired}'
    WHEN ${s}.last_error IS NOT NULL THEN '${ConnectionState.Error}'
    WHEN ${end} IS NOT NULL AND ${end} <= ${warnUntil} THEN '${ConnectionState.Expiring}'
    ELSE '${ConnectionState.Connected}'
  END)`;
}
