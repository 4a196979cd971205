import { OrganizationView } from 'src/organizations/dto/organization.view';

import { toOrganizationRow } from './organization-row';

const base: OrganizationView = {
  id: 'o1',
  name: 'General',
  slug: 'general',
  epicEnvironment: 'sandbox' as OrganizationView['epicEnvironment'],
  fhirBaseUrl: 'https://fhir.example.org/R4',
  epicClientId: 'client',
  hasClientSecret: true,
  epicScopes: 'user/Patient.read',
  tokenAuthMethod: 'client_secret_basic' as OrganizationView['tokenAuthMethod'],
  isConnected: true,
  tokenExpiry: '2026-11-23T12:00:00.000Z',
  lastSync: null,
  lastError: null,
  lastErrorAt: null,
  createdAt: '2026-11-01T00:00:00.000Z',
  updatedAt: '2026-11-01T00:00:00.000Z',
};
const now = new Date('2026-11-23T11:00:00.000Z');

describe('toOrganizationRow', () => {
  it('shows a connected organization with its expiry', () => {
    expect(toOrganizationRow(base, now)).toMatchObject({
      status: '✅ Connected',
      statusClass: 'ok',
      tokenExpiry: '2026-11-23 12:00 UTC',
      lastSync: '—',
    });
  });

  it('asks for action when the token has expired or the connection dropped', () => {
    expect(toOrganizationRow({ ...base, tokenExpiry: '2026-11-23T10:59:59.000Z' }, now).status).toBe(
      '❌ Not connected',
    );
    expect(
      toOrganizationRow({ ...base, isConnected: false, lastError: 'refresh failed' }, now),
    ).toMatchObject({
      status: '❌ Not connected',
      lastError: 'refresh failed',
    });
  });

  it('says when no Epic client is registered', () => {
    expect(toOrganizationRow({ ...base, epicClientId: null }, now).statusClass).toBe('none');
  });
});
