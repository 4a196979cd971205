/**
 * The reasons the scheduled check keeps on a user's credential that ran out (their page shows it),
 * which also tell the two kinds of ending apart (src/connection-health/README.md, "Users' own
 * connections").
 */

/** A renewable connection whose refresh token's announced end passed: a lost connection, told to the user. */
export const RAN_OUT_REASON =
  'The connection ran out: its access ended and it cannot be renewed without signing in again.';

/**
 * A connection that could never be renewed (no refresh token: a provider's EHR launch, a patient
 * without offline access) and reached its natural end: a finished session. It is marked ended, but
 * no notice and no email follow.
 */
export const SESSION_FINISHED_REASON =
  'The session ended: this connection was for a limited time and cannot be renewed. Sign in again to reconnect.';
