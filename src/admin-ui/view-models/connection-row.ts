import { ConnectionState } from 'src/connections/connections.read-model';
import type { ConnectionListItem } from 'src/connections/connections.read-model';
import { serverLabel } from 'src/organizations/organization.types';

export interface StateBadge {
  /** Words first: the state must not be told by colour alone. */
  label: string;
  cssClass: 'ok' | 'warn' | 'bad' | 'none';
}

const BADGES: Record<ConnectionState, StateBadge> = {
  [ConnectionState.Connected]: { label: '✅ Connected', cssClass: 'ok' },
  [ConnectionState.Expiring]: { label: '⚠ Expiring', cssClass: 'warn' },
  [ConnectionState.Expired]: { label: '❌ Expired', cssClass: 'bad' },
  [ConnectionState.Error]: { label: '⚠ Error', cssClass: 'warn' },
  [ConnectionState.NotConnected]: { label: '❌ Not connected', cssClass: 'bad' },
  [ConnectionState.NotConfigured]: { label: 'Not configured', cssClass: 'none' },
};

export const stateBadge = (state: ConnectionState): StateBadge => BADGES[state];

export interface ConnectionRow {
  id: string;
  name: string;
  slug: string;
  environment: string;
  /** What the organization's FHIR server is called: "Epic", the administrator's name, or "the EHR". */
  server: string;
  state: ConnectionState;
  badge: StateBadge;
  tokenExpiry: string;
  /** "refreshes automatically", "ends 2026-11-23 12:00 UTC", or "—". */
  renewal: string;
  lastSync: string;
  lastError: string;
}

export const formatUtc = (date: Date | null): string =>
  date ? date.toISOString().replace('T', ' ').slice(0, 16) + ' UTC' : '—';

/** A table row of the root admin console, from the state read model (never from entities). */
export function toConnectionRow(item: ConnectionListItem): ConnectionRow {
  return {
    id: item.organizationId,
    name: item.name,
    slug: item.slug,
    environment: item.environment === 'production' ? 'Production' : 'Sandbox',
    server: serverLabel(item).name,
    state: item.state,
    badge: stateBadge(item.state),
    tokenExpiry: formatUtc(item.tokenExpiresAt),
    renewal:
      item.tokenExpiresAt === null
        ? '—'
        : item.endsAt
          ? `ends ${formatUtc(item.endsAt)}`
          : 'refreshes automatically',
    lastSync: formatUtc(item.lastSync),
    lastError: item.lastError ?? '',
  };
}
