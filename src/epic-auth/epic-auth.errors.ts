/** Why an Epic authorization step failed; filters map codes to a page or a JSON status. */
export enum EpicAuthErrorCode {
  DiscoveryFailed = 'DISCOVERY_FAILED',
  DiscoveryIncompatible = 'DISCOVERY_INCOMPATIBLE',
  NotConfigured = 'NOT_CONFIGURED',
}

/**
 * A coded EpicAuth failure. `message` is written for an admin to act on and is safe to show;
 * the upstream error stays in `cause` for the log, never for the user (Epic bodies can echo codes).
 */
export class EpicAuthError extends Error {
  constructor(
    readonly code: EpicAuthErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'EpicAuthError';
  }
}
