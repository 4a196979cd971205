import { ConnectionState } from 'src/connections/connections.read-model';
import type { ConnectionListItem } from 'src/connections/connections.read-model';

import { stateBadge, toConnectionRow } from './connection-row';

const item: ConnectionListItem = {
  organizationId: 'o1',
  name: 'General',
  slug: 'general',
  environment: 'sandbox',
  fhirBaseUrl: 'https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4',
  fhirServerName: null,
  state: ConnectionState.Connected,
  tokenExpiresAt: new Date('2026-11-23T12:00:00.000Z'),
  endsAt: null,
  refreshable: true,
  lastSync: null,
  lastError: null,
  lastErrorAt: null,
};

describe('connection rows', () => {
  it('gives every state a badge with words, not only a colour', () => {
    for (const state of Object.values(ConnectionState)) {
      expect(stateBadge(state).label).toMatch(/[A-Za-z]{4,}/);
    }
    expect(stateBadge(ConnectionState.Expired)).toEqual({ label: '❌ Expired', cssClass: 'bad' });
    expect(stateBadge(ConnectionState.Expiring)).toEqual({ label: '⚠ Expiring', cssClass: 'warn' });
  });

  it('shows a refreshable connection as renewing by itself', () => {
    expect(toConnectionRow(item)).toMatchObject({
      badge: { label: '✅ Connected' },
      environment: 'Sandbox',
      server: 'Epic',
      tokenExpiry: '2026-11-23 12:00 UTC',
      renewal: 'refreshes automatically',
      lastSync: '—',
      lastError: '',
    });
  });

  it('shows when a connection without refresh ends, and the last error', () => {
    const row = toConnectionRow({
      ...item,
      state: ConnectionState.Expiring,
      environment: 'production',
      refreshable: false,
      endsAt: new Date('2026-11-23T12:00:00.000Z'),
      lastError: 'HTTP 503',
    });
    expect(row).toMatchObject({
      environment: 'Production',
      renewal: 'ends 2026-11-23 12:00 UTC',
      lastError: 'HTTP 503',
    });
  });

  it('names each organization’s FHIR server: Epic, the administrator’s name, or the EHR', () => {
    expect(toConnectionRow({ ...item, fhirServerName: 'Cerner Millennium' }).server).toBe(
      'Cerner Millennium',
    );
    expect(
      toConnectionRow({ ...item, fhirBaseUrl: 'https://launch.smarthealthit.org/v/r4/fhir' }).server,
    ).toBe('the EHR');
  });

  it('shows a dash when there is no token', () => {
    expect(
      toConnectionRow({ ...item, tokenExpiresAt: null, state: ConnectionState.NotConnected }).renewal,
    ).toBe('—');
  });
});
