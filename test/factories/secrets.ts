import { randomBytes } from 'node:crypto';

/**
 * Every password and secret a test uses contains this marker, so the run's captured log can be
 * searched for all of them at once (global-teardown.ts).
 */
export const TEST_SECRET_MARKER = 'tEsTsEcReT';

export function testSecret(label = 'pw'): string {
  return `${label}-${TEST_SECRET_MARKER}-${randomBytes(9).toString('base64url')}`;
}

/**
 * A whole API key (src/api-keys) anywhere in a text. Keys are random, so they cannot carry the
 * marker: the log check looks for their shape instead (the logger writes `ecgk_<keyId>_[redacted]`).
 */
export const API_KEY_IN_TEXT = /ecgk_[a-z0-9]{12}_[A-Za-z0-9_-]{43}/;
