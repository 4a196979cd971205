import { ConnectionState } from 'src/connections/connections.types';
import type { ConnectionSnapshot } from 'src/connections/connections.read-model';

/**
 * What `/fhir/epic-status` answers. ConnectionHealth builds every field from one snapshot
 * of the connection and the state derived from it (connectionStatusView below), so no
 * field can contradict another. Token fields describe a live connection only.
 */
export interface ConnectionStatus {
  /** A client ID and FHIR base URL are registered: the state is not `not_configured`. */
  configured: boolean;
  /** A usable connection is held: the state is `connected`, `expiring` or `error`. */
  connected: boolean;
  /** The state is `expired`: it ended, or the server refused the refresh (tokens cleared). */
  expired: boolean;
  /** When the held access token ends; null unless connected. */
  expiresAt: string | null;
  /** Renewable without anyone signing in; false unless connected. */
  refreshable: boolean;
  /** The granted scopes; empty unless connected. */
  scopes: string[];
  /** The patient context of the held token; null unless connected. */
  patientId: string | null;
  lastSync: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
  /** The exact redirect URI to register at Epic. */
  callbackUrl: string;
}

/** `/fhir/epic-status`: the connection-health fields plus the state every page and notice uses. */
export interface ConnectionStatusView extends ConnectionStatus {
  state: ConnectionState;
  /** When the connection stops working without a new sign-in; null if it refreshes indefinitely. */
  endsAt: string | null;
  /** What the pages call the organization's FHIR server ("Epic", the admin's name, "the EHR"). */
  serverName: string;
  isEpic: boolean;
}

/**
 * States with a usable connection: tokens are held and have not ended. `error` is one of them: the
 * last call or refresh failed transiently and the tokens were kept (the page says "Connected, but
 * calls are failing", and Disconnect is offered).
 */
const LIVE_STATES: readonly ConnectionState[] = [
  ConnectionState.Connected,
  ConnectionState.Expiring,
  ConnectionState.Error,
];

/**
 * The status JSON from one snapshot: every field follows the snapshot's state, so none can
 * contradict another (an `expired` state never says `expired: false`, a dead credential never shows
 * an expiry or scopes). The token fields describe a live connection only: in `expired`,
 * `not_connected` and `not_configured` they are empty, whatever is still stored.
 */
export function connectionStatusView(
  snapshot: ConnectionSnapshot,
  callbackUrl: string,
): ConnectionStatusView {
  const { state } = snapshot;
  const live = LIVE_STATES.includes(state);
  const credential = live ? snapshot.facts.credential : null;
  return {
    configured: state !== ConnectionState.NotConfigured,
    connected: live,
    expired: state === ConnectionState.Expired,
    expiresAt: credential?.expiresAt.toISOString() ?? null,
    refreshable: credential?.refreshable ?? false,
    scopes: credential ? snapshot.scopes : [],
    patientId: credential ? snapshot.patientId : null,
    lastSync: snapshot.lastSync?.toISOString() ?? null,
    lastError: snapshot.lastError,
    lastErrorAt: snapshot.lastErrorAt?.toISOString() ?? null,
    callbackUrl,
    state,
    endsAt: credential ? (snapshot.endsAt?.toISOString() ?? null) : null,
    serverName: snapshot.server.name,
    isEpic: snapshot.server.isEpic,
  };
}
