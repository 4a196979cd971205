import type { AuditEventView } from 'src/audit/audit.service';
import type { NotificationView } from 'src/connection-health/notifications.service';
import type { ConnectionSnapshot } from 'src/connections/connections.read-model';
import type { OrganizationView } from 'src/organizations/dto/organization.view';
import { ServerLabel, serverLabel } from 'src/organizations/organization.types';
import { Role } from 'src/users/user.types';
import type { AuthUser, UserView } from 'src/users/user.view';

import { formatUtc, StateBadge, stateBadge } from './connection-row';
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
  options: { connected: boolean },
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
  };
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
