import { ConnectionState } from 'src/connections/connections.read-model';
import type { ConnectionSnapshot } from 'src/connections/connections.read-model';
import type { OrganizationView } from 'src/organizations/dto/organization.view';
import { EPIC_LABEL } from 'src/organizations/organization.types';
import { Role } from 'src/users/user.types';
import type { UserView } from 'src/users/user.view';

import { hourlyTraffic } from 'src/gateway/traffic/hourly-traffic';

import {
  accessRows,
  adminCreatedPage,
  organizationPage,
  serverSource,
  trafficChart,
} from './organization-page';

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
  traffic: [],
  access: [],
  limits: {
    override: { ratePerSecond: null, concurrency: null },
    defaults: { ratePerSecond: 20, concurrency: 10 },
  },
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

  it('shows the gateway limits to everyone, and a limits form sent back with its messages', () => {
    const page = organizationPage({ user: orgAdmin, csrfToken: 'csrf' }, facts(snapshot()), {
      connected: false,
    });
    expect(page.isRoot).toBe(false);
    expect(page.gatewayLimits).toMatchObject({
      rate: { value: 20, source: 'default' },
      concurrency: { value: 10, source: 'default' },
      hasErrors: false,
    });
    const sent = organizationPage({ user: root, csrfToken: 'csrf' }, facts(snapshot()), {
      connected: false,
      limitsForm: { form: { ratePerSecond: '0', concurrency: '' }, errors: { ratePerSecond: 'too low' } },
    });
    expect(sent.gatewayLimits).toMatchObject({
      form: { ratePerSecond: '0', concurrency: '' },
      errors: { ratePerSecond: 'too low' },
      hasErrors: true,
    });
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

describe('gateway traffic chart', () => {
  const now = new Date('2026-12-07T10:42:00Z');
  const hours = hourlyTraffic(
    [
      { hour: new Date('2026-12-07T10:00:00Z'), requests: 10, errors: 4 },
      { hour: new Date('2026-12-07T09:00:00Z'), requests: 5, errors: 0 },
    ],
    now,
  );

  it('draws one bar per hour, scaled to the busiest, errors inside the requests', () => {
    const chart = trafficChart(hours);
    expect(chart).toMatchObject({
      width: 720,
      plotHeight: 120,
      height: 140,
      totalRequests: 15,
      totalErrors: 4,
    });
    expect(chart.bars).toHaveLength(24);
    const [busiest, half, empty] = [chart.bars[23], chart.bars[22], chart.bars[0]];
    expect(busiest).toMatchObject({ requestsHeight: 120, requestsY: 0, errorsHeight: 48, errorsY: 72 });
    expect(half).toMatchObject({ requestsHeight: 60, requestsY: 60, errorsHeight: 0, errorsY: 120 });
    expect(empty).toMatchObject({ requestsHeight: 0, requestsY: 120 });
    expect(busiest.label).toBe('2026-12-07 10:00 UTC: 10 requests, 4 errors');
    expect(chart.bars[0].x).toBe(1);
    expect(chart.bars[1].x).toBe(31);
    expect(busiest.width).toBe(28);
    expect(busiest.x + busiest.width).toBeLessThanOrEqual(720);
    expect(chart.scaleLabel).toBe('10 requests an hour');
    expect([chart.fromLabel, chart.toLabel]).toEqual(['11:00 UTC', '10:00 UTC']);
    expect(chart.summary).toBe('Gateway traffic over the last 24 hours: 15 requests, 4 errors.');
  });

  it('keeps a flat, valid chart without traffic (no division by zero)', () => {
    const chart = trafficChart(hourlyTraffic([], now));
    expect(chart.bars.every((b) => b.requestsHeight === 0 && b.requestsY === 120)).toBe(true);
    expect(chart.scaleLabel).toBe('1 request an hour');
    expect(chart.summary).toBe('Gateway traffic over the last 24 hours: 0 requests, 0 errors.');
  });

  it('lists access records with words for what is missing, and no more than they hold', () => {
    const rows = accessRows([
      {
        id: '2',
        apiKeyId: 'abc123',
        userId: null,
        method: 'GET',
        resourceType: 'Patient',
        status: 200,
        durationMs: 12,
        bytesSent: 20_480,
        at: '2026-12-07T10:41:00.000Z',
      },
      {
        id: '1',
        apiKeyId: 'abc123',
        userId: 'u-1',
        method: 'POST',
        resourceType: null,
        status: 403,
        durationMs: 3,
        bytesSent: 250,
        at: '2026-12-07T10:40:00.000Z',
      },
    ]);
    expect(rows).toEqual([
      {
        at: '2026-12-07 10:41 UTC',
        atIso: '2026-12-07T10:41:00.000Z',
        apiKeyId: 'abc123',
        userId: '—',
        method: 'GET',
        resourceType: 'Patient',
        status: 200,
        statusClass: 'ok',
        duration: '12 ms',
        bytes: '20 KiB',
      },
      {
        at: '2026-12-07 10:40 UTC',
        atIso: '2026-12-07T10:40:00.000Z',
        apiKeyId: 'abc123',
        userId: 'u-1',
        method: 'POST',
        resourceType: '—',
        status: 403,
        statusClass: 'error',
        duration: '3 ms',
        bytes: '250 B',
      },
    ]);
  });
});
