import { applyDecorators, LoggerService } from '@nestjs/common';
import { EventEmitter2, OnEvent } from '@nestjs/event-emitter';

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
  /** An admin (or user) connected through Epic's authorization: new tokens stored. */
  Connected = 'connection.connected',
  /** The tokens were deleted on purpose (disconnect, re-authentication started). */
  Disconnected = 'connection.disconnected',
}

/** Listens to every connection event (a listener that re-reads the connection whatever changed). */
export const OnAnyConnectionEvent = (): MethodDecorator =>
  applyDecorators(...Object.values(ConnectionEvents).map((event) => OnEvent(event)));

/**
 * The `code` of a `connection.lost` about a user's credential that could never be renewed (no
 * refresh token) and reached its natural end: a finished session (a provider's EHR launch, a
 * patient without offline access), not a lost connection. Listeners record it, nobody is told.
 */
export const SESSION_FINISHED_CODE = 'session_finished';

export interface ConnectionEvent {
  organizationId: string;
  /** Empty when the event concerns no single credential (a disconnect). */
  credentialId: string;
  /** Null for an organization's own connection; the user for a per-user credential. */
  userId: string | null;
  /** A short code (`invalid_grant`, `timeout`, `http_503`…); absent for refreshes and restores. */
  code?: string;
  /** The admin-facing message recorded as lastError, when there is one. */
  message?: string;
  at: Date;
}

/**
 * Emits a connection event without letting a listener's failure reach the request that caused it
 * (listeners run after the change is committed; a failing one is logged).
 */
export function emitConnectionEvent(
  emitter: EventEmitter2,
  logger: LoggerService,
  event: ConnectionEvents,
  credential: { id: string; organizationId: string; userId: string | null },
  code?: string,
  message?: string,
): void {
  const payload: ConnectionEvent = {
    organizationId: credential.organizationId,
    credentialId: credential.id,
    userId: credential.userId,
    code,
    message,
    at: new Date(),
  };
  emitter.emitAsync(event, payload).catch((error: unknown) => {
    logger.error({ err: error, event }, `A listener of ${event} failed`);
  });
}
