import { OrganizationView } from 'src/organizations/dto/organization.view';
import { EpicEnvironment } from 'src/organizations/organization.types';

export interface OrganizationRow {
  id: string;
  name: string;
  slug: string;
  environment: string;
  status: string;
  statusClass: 'ok' | 'warn' | 'bad' | 'none';
  tokenExpiry: string;
  lastSync: string;
  lastError: string;
}

const fmt = (iso: string | null): string =>
  iso ? new Date(iso).toISOString().replace('T', ' ').slice(0, 16) + ' UTC' : '—';

/**
 * A table row for one organization. The connection state here is the seed's two-way display
 * (connected or action required); the ConnectionHealth issue replaces it with the full state model.
 */
export function toOrganizationRow(org: OrganizationView, now: Date): OrganizationRow {
  const notConfigured = !org.epicClientId || !org.fhirBaseUrl;
  const live = org.isConnected && org.tokenExpiry !== null && new Date(org.tokenExpiry) > now;
  return {
    id: org.id,
    name: org.name,
    slug: org.slug,
    environment: org.epicEnvironment === EpicEnvironment.Production ? 'Production' : 'Sandbox',
    status: notConfigured ? 'Not configured' : live ? '✅ Connected' : '❌ Not connected',
    statusClass: notConfigured ? 'none' : live ? 'ok' : 'bad',
    tokenExpiry: fmt(org.tokenExpiry),
    lastSync: fmt(org.lastSync),
    lastError: org.lastError ?? '',
  };
}
