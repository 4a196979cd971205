import { NOW, STATE_CASES, WARNING_MS } from 'test/fixtures/connection-state-cases';

import { connectionEnd, deriveConnectionState } from './connection-state';

describe('deriveConnectionState', () => {
  it.each(STATE_CASES)('%s', (_name, facts, expected) => {
    expect(deriveConnectionState(facts, NOW, WARNING_MS)).toBe(expected);
  });

  it('moves from connected to expiring to expired as the clock passes', () => {
    const facts = STATE_CASES.find(([name]) => name === 'access token with time left, no refresh')![1];
    const after = (minutes: number) => new Date(NOW.getTime() + minutes * 60_000);
    expect(
      [0, 29, 30, 31, 59, 60, 61].map((m) => deriveConnectionState(facts, after(m), WARNING_MS)),
    ).toEqual(['connected', 'connected', 'expiring', 'expiring', 'expiring', 'expired', 'expired']);
  });
});

describe('connectionEnd', () => {
  it('is the access token end without a refresh token, the refresh end with one, else null', () => {
    const expiresAt = new Date(NOW.getTime() + 1000);
    expect(connectionEnd(null)).toBeNull();
    expect(connectionEnd({ expiresAt, refreshable: false, refreshExpiresAt: null })).toBe(expiresAt);
    expect(connectionEnd({ expiresAt, refreshable: true, refreshExpiresAt: null })).toBeNull();
    expect(connectionEnd({ expiresAt, refreshable: true, refreshExpiresAt: NOW })).toBe(NOW);
  });
});
