import { randomBytes } from 'node:crypto';

/**
 * Every password and secret a test uses contains this marker, so the run's captured log can be
 * searched for all of them at once (global-teardown.ts).
 */
export const TEST_SECRET_MARKER = 'tEsTsEcReT';

export function testSecret(label = 'pw'): string {
  return `${label}-${TEST_SECRET_MARKER}-${randomBytes(9).toString('base64url')}`;
}
