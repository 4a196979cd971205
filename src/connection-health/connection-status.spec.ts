import { EPIC_LABEL } from 'src/organizations/organization.types';

import { ConnectionState } from 'src/connections/connections.types';
import type { ConnectionSnapshot } from 'src/connections/connections.read-model';
import { connectionStatusView } from './connection-status';

const now = new Date('2026-11-23T12:00:00.000Z');
const at = (minutes: number) => new Date(now.getTime() + minutes * 60_000);
const CALLBACK = 'https://connect.example/fhir/epic-callback';

const credential = { expiresAt: at(50), refreshable: true, refreshExpiresAt: null };

function snapshot(state: ConnectionState, extra: Partial<ConnectionSnapshot> = {}): ConnectionSnapshot {
  return {
    organizationId: 'o1',
    organizationName: 'General',
    facts: { configured: true, credential, lastError: null, tokenExpiry: credential.expiresAt },
    state,
    endsAt: null,
    lastError: null,
    lastErrorAt: null,
    lastSync: at(-5),
    notifiedState: null,
    scopes: ['openid', 'user/Patient.read'],
    patientId: null,
    server: EPIC_LABEL,
    ...extra,
  };
}

describe('connectionStatusView', () => {
  it('reports a live connection with its token', () => {
    expect(connectionStatusView(snapshot(ConnectionState.Connected), CALLBACK)).toEqual({
      configured: true,
      connected: true,
      expired: false,
      expiresAt: at(50).toISOString(),
      refreshable: true,
      scopes: ['openid', 'user/Patient.read'],
      patientId: null,
      lastSync: at(-5).toISOString(),
      lastError: null,
      lastErrorAt: null,
      callbackUrl: CALLBACK,
      state: 'connected',
      endsAt: null,
      serverName: 'Epic',
      isEpic: true,
    });
  });

  it('after a terminal refresh failure (tokens cleared, token_expiry kept) says expired, and nothing live', () => {
    const view = connectionStatusView(
      snapshot(ConnectionState.Expired, {
        facts: { configured: true, credential: null, lastError: 'invalid_grant', tokenExpiry: at(30) },
        lastError: 'invalid_grant',
        lastErrorAt: at(-1),
        scopes: [],
      }),
      CALLBACK,
    );
    expect(view).toMatchObject({
      state: 'expired',
      expired: true,
      connected: false,
      configured: true,
      expiresAt: null, // not the kept token_expiry, which may even be in the future
      refreshable: false,
      scopes: [],
      endsAt: null,
      lastError: 'invalid_grant',
      lastErrorAt: at(-1).toISOString(),
    });
  });

  it('an ended credential that is still stored shows no token either', () => {
    const ended = { expiresAt: at(-1), refreshable: false, refreshExpiresAt: null };
    const view = connectionStatusView(
      snapshot(ConnectionState.Expired, {
        facts: { configured: true, credential: ended, lastError: null, tokenExpiry: ended.expiresAt },
        endsAt: ended.expiresAt,
      }),
      CALLBACK,
    );
    expect(view).toMatchObject({
      expired: true,
      connected: false,
      expiresAt: null,
      scopes: [],
      endsAt: null,
    });
  });

  it('keeps the tokens of an expiring or failing connection, which is still connected', () => {
    const ending = { expiresAt: at(10), refreshable: false, refreshExpiresAt: null };
    expect(
      connectionStatusView(
        snapshot(ConnectionState.Expiring, {
          facts: { configured: true, credential: ending, lastError: null, tokenExpiry: ending.expiresAt },
          endsAt: ending.expiresAt,
        }),
        CALLBACK,
      ),
    ).toMatchObject({
      connected: true,
      expired: false,
      refreshable: false,
      expiresAt: at(10).toISOString(),
      endsAt: at(10).toISOString(),
    });
    expect(
      connectionStatusView(snapshot(ConnectionState.Error, { lastError: 'HTTP 503' }), CALLBACK),
    ).toMatchObject({ state: 'error', connected: true, expired: false, lastError: 'HTTP 503' });
  });

  it('not connected and not configured: nothing connected, nothing expired', () => {
    for (const state of [ConnectionState.NotConnected, ConnectionState.NotConfigured]) {
      const view = connectionStatusView(
        snapshot(state, {
          facts: {
            configured: state === ConnectionState.NotConnected,
            credential: null,
            lastError: null,
            tokenExpiry: null,
          },
          scopes: [],
        }),
        CALLBACK,
      );
      expect(view).toMatchObject({
        state,
        configured: state === ConnectionState.NotConnected,
        connected: false,
        expired: false,
        expiresAt: null,
        refreshable: false,
        scopes: [],
      });
    }
  });
});
