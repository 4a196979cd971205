import { ConnectionState } from 'src/connections/connections.read-model';
import type { ConnectionSnapshot } from 'src/connections/connections.read-model';
import type { OrganizationView } from 'src/organizations/dto/organization.view';
import { EPIC_LABEL } from 'src/organizations/organization.types';
import { Role } from 'src/users/user.types';
import type { UserView } from 'src/users/user.view';

import { adminCreatedPage, organizationPage, serverSource } from './organization-page';

const org = {
  id: 'o1',
  name: 'General',
  slug: 'general',
  epicEnvironment: 'production',
  fhirBaseUrl: 'https://fhir.general.example/api/FHIR/R4',
  fhirServerName: null,
  epicClientId: 'client-1',
  hasClientSecret: true,
} as OrganizationView;

const root = {
  id: 'u1',
  email: 'root@example.test',
  role: Role.RootAdmin,
  organizationId: null,
  mustChangePassword: false,
};
const orgAdmin = { ...root, id: 'u2', role: Role.OrgAdmin, organizationId: 'o1' };

const snapshot = (changes: Partial<ConnectionSnapshot> = {}): ConnectionSnapshot => ({
  organizationId: 'o1',
  organizationName: 'General',
  facts: {
    configured: true,
    credential: { expiresAt: new Date('2026-11-20T12:00:00Z'), refreshable: true, refreshExpiresAt: null },
    lastError: null,
    tokenExpiry: new Date('2026-11-20T12:00:00Z'),
  },
  state: ConnectionState.Connected,
  endsAt: null,
  lastError: null,
  lastErrorAt: null,
  lastSync: new Date('2026-11-20T11:00:00Z'),
  notifiedState: null,
  scopes: [],
  patientId: null,
  server: EPIC_LABEL,
  ...changes,
});

const facts = (s: ConnectionSnapshot | null) => ({
  org,
  admins: [],
  events: [],
  snapshot: s,
  notifications: [],
});

describe('organization page', () => {
  it('shows the state, the token expiry, how it renews and the last sync', () => {
    const page = organizationPage({ user: root, csrfToken: 'csrf' }, facts(snapshot()), { connected: false });
    expect(page).toMatchObject({
      title: 'General',
      user: root,
      csrfToken: 'csrf',
      org,
      badge: { label: '✅ Connected', cssClass: 'ok' },
      tokenExpiry: '2026-11-20 12:00 UTC',
      renewal: 'refreshes automatically',
      lastSync: '2026-11-20 11:00 UTC',
      lastError: null,
      lastErrorSince: '—',
      isRoot: true,
      flash: undefined,
    });
    expect(page.server.name).toBe('Epic');
  });

  it('says when a connection ends, and since when it fails', () => {
    const page = organizationPage(
      { user: orgAdmin, csrfToken: 'csrf' },
      facts(
        snapshot({
          state: ConnectionState.Error,
          endsAt: new Date('2026-11-23T12:00:00Z'),
          lastError: 'Epic could not be reached.',
          lastErrorAt: new Date('2026-11-20T10:00:00Z'),
        }),
      ),
      { connected: false },
    );
    expect(page).toMatchObject({
      badge: { label: '⚠ Error', cssClass: 'warn' },
      renewal: 'ends 2026-11-23 12:00 UTC',
      lastError: 'Epic could not be reached.',
      lastErrorSince: '2026-11-20 10:00 UTC',
      isRoot: false,
    });
  });

  it('without tokens: no expiry, no renewal, and no "Connected" flash even after ?connected=1', () => {
    const none = snapshot({
      state: ConnectionState.NotConnected,
      facts: { ...snapshot().facts, credential: null },
    });
    const page = organizationPage({ user: root, csrfToken: 'csrf' }, facts(none), { connected: true });
    expect(page).toMatchObject({ tokenExpiry: '—', renewal: '—', flash: undefined });
    expect(
      organizationPage({ user: root, csrfToken: 'c' }, facts(null), { connected: false }).badge,
    ).toBeNull();
  });

  it('confirms a fresh connection in the server’s name', () => {
    const named = { ...org, fhirBaseUrl: 'https://fhir.example.test/r4', fhirServerName: 'Cerner' };
    const page = organizationPage(
      { user: root, csrfToken: 'csrf' },
      { ...facts(snapshot()), org: named },
      { connected: true },
    );
    expect(page.flash).toBe('Connected to Cerner.');
    expect(page.serverSource).toBe('as named by an administrator');
  });

  it('says why the server is called what it is called', () => {
    expect(serverSource({ fhirBaseUrl: null }, EPIC_LABEL)).toBe(
      'Epic by default: no base URL is registered yet',
    );
    expect(serverSource(org, EPIC_LABEL)).toBe('recognised from the base URL');
    expect(
      serverSource({ fhirBaseUrl: 'https://fhir.example.test/r4' }, { ...EPIC_LABEL, isEpic: false }),
    ).toBe('not recognised as Epic; an administrator can name it on the registration page');
  });

  it('shows a new admin and their temporary password once', () => {
    const created = { id: 'u3', email: 'new@example.test' } as UserView;
    expect(adminCreatedPage(root, 'o1', { user: created, temporaryPassword: 'pw' })).toEqual({
      title: 'Admin created',
      user: root,
      orgId: 'o1',
      created,
      temporaryPassword: 'pw',
    });
  });
});
