import { ConnectionState } from 'src/connections/connections.read-model';
import type { ConnectionListItem } from 'src/connections/connections.read-model';
import { Role } from 'src/users/user.types';

import { CONSOLE_PAGE_SIZE, consoleLink, consoleListQuery, consolePage } from './console-page';

const viewer = {
  user: {
    id: 'u1',
    email: 'root@example.test',
    role: Role.RootAdmin,
    organizationId: null,
    mustChangePassword: false,
  },
  csrfToken: 'csrf',
};

const counts: Record<ConnectionState, number> = {
  [ConnectionState.Connected]: 60,
  [ConnectionState.Expiring]: 2,
  [ConnectionState.Expired]: 3,
  [ConnectionState.Error]: 1,
  [ConnectionState.NotConnected]: 4,
  [ConnectionState.NotConfigured]: 5,
};

const item: ConnectionListItem = {
  organizationId: 'o1',
  name: 'General',
  slug: 'general',
  environment: 'production',
  fhirBaseUrl: 'https://fhir.general.example/api/FHIR/R4',
  fhirServerName: null,
  state: ConnectionState.Connected,
  tokenExpiresAt: new Date('2026-11-20T12:00:00Z'),
  endsAt: null,
  refreshable: true,
  lastSync: null,
  lastError: null,
  lastErrorAt: null,
};

describe('console page', () => {
  it('links keep the filter, search and sort, and leave out blanks and page 1', () => {
    expect(consoleLink({})).toBe('/admin');
    expect(consoleLink({ state: 'attention', q: '', sort: 'expiry', page: 1 })).toBe(
      '/admin?state=attention&sort=expiry',
    );
    expect(consoleLink({ q: 'saint éloi', page: 3 })).toBe('/admin?q=saint+%C3%A9loi&page=3');
  });

  it('asks the read model for one page of the filtered, searched, sorted list', () => {
    expect(consoleListQuery({ state: ConnectionState.Expired, q: 'gen', sort: 'state', page: 3 })).toEqual({
      state: 'expired',
      search: 'gen',
      sort: 'state',
      limit: CONSOLE_PAGE_SIZE,
      offset: 2 * CONSOLE_PAGE_SIZE,
    });
    expect(consoleListQuery({})).toMatchObject({ offset: 0 });
  });

  it('counts by state, with "Need attention", links that start again at page 1, and the sort in use', () => {
    const page = consolePage(viewer, { q: 'gen', page: 2 }, counts, { items: [item], total: 75 });
    expect(page).toMatchObject({ title: 'Organizations', user: viewer.user, csrfToken: 'csrf', total: 75 });
    expect(page.rows).toEqual([expect.objectContaining({ id: 'o1', name: 'General', server: 'Epic' })]);
    expect(page.summary.find((s) => s.state === ConnectionState.Expired)).toEqual({
      state: ConnectionState.Expired,
      badge: { label: '❌ Expired', cssClass: 'bad' },
      count: 3,
      href: '/admin?q=gen&state=expired',
      current: false,
    });
    expect(page.attention).toEqual({ count: 6, href: '/admin?q=gen&state=attention' });
    expect(page.allHref).toBe('/admin?q=gen');
    expect(page.sorts.filter((s) => s.current).map((s) => s.sort)).toEqual(['name']);
    expect(page.sorts.find((s) => s.sort === 'last_sync')?.href).toBe('/admin?q=gen&sort=last_sync');
  });

  it('pages by 50: previous, next and "51–75 of 75"', () => {
    const second = consolePage(viewer, { page: 2 }, counts, { items: [], total: 75 });
    expect(second).toMatchObject({ previous: '/admin', next: null, pageInfo: '51–75 of 75' });
    const first = consolePage(viewer, { state: ConnectionState.Connected }, counts, { items: [], total: 60 });
    expect(first).toMatchObject({
      previous: null,
      next: '/admin?state=connected&page=2',
      pageInfo: '1–50 of 60',
    });
    expect(first.summary.find((s) => s.current)?.state).toBe(ConnectionState.Connected);
    expect(consolePage(viewer, { q: 'none' }, counts, { items: [], total: 0 }).pageInfo).toBe('');
  });
});
