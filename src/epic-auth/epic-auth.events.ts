/**
 * Events about Epic connections, for ConnectionHealth (notifications, state) and the audit
 * history. Emitted after the change is committed; listeners must not throw back into the caller.
 */
export enum ConnectionEvents {
  /** New tokens were stored after a refresh. */
  TokenRefreshed = 'connection.token-refreshed',
  /** The tokens are dead and were cleared: someone must sign in at Epic again. */
  Lost = 'connection.lost',
  /** A call or refresh failed transiently; the tokens were kept. */
  Degraded = 'connection.degraded',
  /** A call succeeded after a recorded failure. */
  Restored = 'connection.restored',
}

export interface ConnectionEvent {
  organizationId: string;
  credentialId: string;
  /** Null for an organization's own connection; the user for a per-user credential. */
  userId: string | null;
  /** A short code (`invalid_grant`, `timeout`, `http_503`…); absent for refreshes and restores. */
  code?: string;
  /** The admin-facing message recorded as lastError, when there is one. */
  message?: string;
  at: Date;
}
