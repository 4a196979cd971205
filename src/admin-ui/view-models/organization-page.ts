import type { AuditEventView } from 'src/audit/audit.service';
import type { NotificationView } from 'src/connection-health/notifications.service';
import type { ConnectionSnapshot } from 'src/connections/connections.read-model';
import type { GatewayAccessView, TrafficHour } from 'src/gateway/traffic/gateway-traffic.types';
import type { OrganizationView } from 'src/organizations/dto/organization.view';
import { ServerLabel, serverLabel } from 'src/organizations/organization.types';
import { Role } from 'src/users/user.types';
import type { AuthUser, UserView } from 'src/users/user.view';

import { formatUtc, StateBadge, stateBadge } from './connection-row';
import {
  GatewayLimitsFacts,
  GatewayLimitsForm,
  GatewayLimitsPanel,
  gatewayLimitsPanel,
} from './gateway-limits';
import type { Viewer } from './page';

/** What the organization page shows, as its services return it. */
export interface OrganizationFacts {
  org: OrganizationView;
  admins: UserView[];
  /** The latest audit events (newest first). */
  events: AuditEventView[];
  /** The connection's state; null if the organization is gone meanwhile. */
  snapshot: ConnectionSnapshot | null;
  /** The latest notifications about this organization the viewer may see. */
  notifications: NotificationView[];
  /** Gateway requests and errors per hour over the last 24 hours, oldest first. */
  traffic: TrafficHour[];
  /** The latest gateway access records (newest first). */
  access: GatewayAccessView[];
  /** The gateway's limits in force for it, and the defaults from config. */
  limits: GatewayLimitsFacts;
}

/** One hour of the traffic chart: a bar for the requests, and inside it one for the errors. */
export interface TrafficBar {
  x: number;
  width: number;
  requestsY: number;
  requestsHeight: number;
  errorsY: number;
  errorsHeight: number;
  /** The tooltip (an SVG `<title>`): "2026-12-07 10:00 UTC: 7 requests, 2 errors". */
  label: string;
}

/**
 * The gateway traffic chart, drawn on the server as SVG: geometry in attributes, colours from
 * classes in public/css (the CSP allows no inline style or script).
 */
export interface TrafficChart {
  width: number;
  height: number;
  /** The height of the plot (the axis labels sit below it). */
  plotHeight: number;
  bars: TrafficBar[];
  /** The top of the scale, e.g. "12 requests an hour". */
  scaleLabel: string;
  /** The first and last hours, under the axis. */
  fromLabel: string;
  toLabel: string;
  totalRequests: number;
  totalErrors: number;
  /** A sentence for screen readers and the figure's caption. */
  summary: string;
}

/** A row of the gateway access table. */
export interface AccessRow {
  at: string;
  atIso: string;
  apiKeyId: string;
  userId: string;
  method: string;
  resourceType: string;
  status: number;
  /** `ok` (below 400) or `error`: the status cell's class. */
  statusClass: 'ok' | 'error';
  duration: string;
  bytes: string;
}

/** `GET /admin/organizations/:orgId`: one organization, its connection, users, history. */
export interface OrganizationPage extends Viewer, OrganizationFacts {
  title: string;
  /** What the pages call the server ("Epic", the administrator's name, "the EHR"). */
  server: ServerLabel;
  /** Why it is called so. */
  serverSource: string;
  badge: StateBadge | null;
  tokenExpiry: string;
  /** "refreshes automatically", "ends 2026-11-23 12:00 UTC", or "—" without tokens. */
  renewal: string;
  lastSync: string;
  lastError: string | null;
  lastErrorSince: string;
  /** Root admins also see the forms to add an admin, rename and delete. */
  isRoot: boolean;
  /** After a connection (`?connected=1`), when tokens are stored: "Connected to Epic." */
  flash: string | undefined;
  trafficChart: TrafficChart;
  accessRows: AccessRow[];
  /** The FHIR gateway limits: everyone sees them; root admins also get the form. */
  gatewayLimits: GatewayLimitsPanel;
}

/** `POST /admin/organizations/:orgId/admins`: the new admin, and a generated password shown once. */
export interface AdminCreatedPage {
  title: string;
  user: AuthUser;
  orgId: string;
  created: UserView;
  temporaryPassword?: string;
}

/** Why the server is called what the page calls it. */
export function serverSource(org: Pick<OrganizationView, 'fhirBaseUrl'>, server: ServerLabel): string {
  if (!org.fhirBaseUrl) return 'Epic by default: no base URL is registered yet';
  if (server.source === 'admin') return 'as named by an administrator';
  return server.isEpic
    ? 'recognised from the base URL'
    : 'not recognised as Epic; an administrator can name it on the registration page';
}

/** The organization page's view model: pure, from what the services returned. */
export function organizationPage(
  viewer: Viewer,
  facts: OrganizationFacts,
  options: {
    connected: boolean;
    /** The limits form sent back with messages. */
    limitsForm?: { form: GatewayLimitsForm; errors: Record<string, string> };
  },
): OrganizationPage {
  const { org, snapshot } = facts;
  const server = serverLabel(org);
  const credential = snapshot?.facts.credential ?? null;
  return {
    title: org.name,
    ...viewer,
    ...facts,
    server,
    serverSource: serverSource(org, server),
    badge: snapshot ? stateBadge(snapshot.state) : null,
    tokenExpiry: formatUtc(credential?.expiresAt ?? null),
    renewal: !credential
      ? '—'
      : snapshot?.endsAt
        ? `ends ${formatUtc(snapshot.endsAt)}`
        : 'refreshes automatically',
    lastSync: formatUtc(snapshot?.lastSync ?? null),
    lastError: snapshot?.lastError ?? null,
    lastErrorSince: formatUtc(snapshot?.lastErrorAt ?? null),
    isRoot: viewer.user.role === Role.RootAdmin,
    flash: options.connected && credential ? `Connected to ${server.name}.` : undefined,
    trafficChart: trafficChart(facts.traffic),
    accessRows: accessRows(facts.access),
    gatewayLimits: gatewayLimitsPanel(facts.limits, options.limitsForm),
  };
}

const CHART = { width: 720, plotHeight: 120, axisHeight: 20, gap: 2 };

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
const hourLabel = (hour: Date): string => hour.toISOString().slice(11, 16);

/** The traffic chart's geometry: one bar per hour, scaled to the busiest hour (at least 1). */
export function trafficChart(hours: TrafficHour[]): TrafficChart {
  const max = Math.max(1, ...hours.map((h) => h.requests));
  const slot = hours.length > 0 ? CHART.width / hours.length : CHART.width;
  const scale = (n: number): number => Math.round((n / max) * CHART.plotHeight * 10) / 10;
  const bars = hours.map((h, i): TrafficBar => {
    const requestsHeight = scale(h.requests);
    const errorsHeight = scale(h.errors);
    return {
      x: Math.round((i * slot + CHART.gap / 2) * 10) / 10,
      width: Math.round((slot - CHART.gap) * 10) / 10,
      requestsY: Math.round((CHART.plotHeight - requestsHeight) * 10) / 10,
      requestsHeight,
      errorsY: Math.round((CHART.plotHeight - errorsHeight) * 10) / 10,
      errorsHeight,
      label: `${formatUtc(h.hour)}: ${plural(h.requests, 'request')}, ${plural(h.errors, 'error')}`,
    };
  });
  const totalRequests = hours.reduce((sum, h) => sum + h.requests, 0);
  const totalErrors = hours.reduce((sum, h) => sum + h.errors, 0);
  return {
    width: CHART.width,
    height: CHART.plotHeight + CHART.axisHeight,
    plotHeight: CHART.plotHeight,
    bars,
    scaleLabel: `${plural(max, 'request')} an hour`,
    fromLabel: hours[0] ? `${hourLabel(hours[0].hour)} UTC` : '',
    toLabel: hours.length > 0 ? `${hourLabel(hours[hours.length - 1].hour)} UTC` : '',
    totalRequests,
    totalErrors,
    summary: `Gateway traffic over the last 24 hours: ${plural(totalRequests, 'request')}, ${plural(totalErrors, 'error')}.`,
  };
}

/** The access table's rows: no query string, body or resource id is ever recorded, so none shows. */
export function accessRows(access: GatewayAccessView[]): AccessRow[] {
  return access.map((a) => ({
    at: formatUtc(new Date(a.at)),
    atIso: a.at,
    apiKeyId: a.apiKeyId,
    userId: a.userId ?? '—',
    method: a.method,
    resourceType: a.resourceType ?? '—',
    status: a.status,
    statusClass: a.status >= 400 ? 'error' : 'ok',
    duration: `${a.durationMs} ms`,
    bytes: a.bytesSent >= 10_240 ? `${Math.round(a.bytesSent / 1024)} KiB` : `${a.bytesSent} B`,
  }));
}

/** The page after creating an org admin (no forms on it, so no CSRF token). */
export function adminCreatedPage(
  user: AuthUser,
  orgId: string,
  result: { user: UserView; temporaryPassword?: string },
): AdminCreatedPage {
  return {
    title: 'Admin created',
    user,
    orgId,
    created: result.user,
    temporaryPassword: result.temporaryPassword,
  };
}
