import type { OrganizationConnectionState } from 'src/connections/connections.service';

import { Organization } from '../entities/organization.entity';
import { serverLabel, speakOfServer } from '../server-label';
import {
  AssertionAlg,
  BasicCredentialEncoding,
  ConnectionMode,
  defaultScopes,
  EpicEnvironment,
  ScopeSyntax,
  TokenAuthMethod,
} from '../organization.types';

/** What leaves the Organizations module. The client secret appears only as "one is stored". */
export interface OrganizationView {
  id: string;
  name: string;
  slug: string;
  epicEnvironment: EpicEnvironment;
  fhirBaseUrl: string | null;
  /** The name an administrator gave the FHIR server, or null. */
  fhirServerName: string | null;
  /** What the pages call the server: `fhirServerName`, else "Epic" or "the EHR" (server-label.ts). */
  serverName: string;
  /** Whether the server is Epic (Epic-specific help applies). */
  isEpic: boolean;
  epicClientId: string | null;
  hasClientSecret: boolean;
  /** Data scopes requested from Epic. */
  epicScopes: string;
  tokenAuthMethod: TokenAuthMethod;
  /** client_secret_basic: `auto` (detected) or the encoding an administrator chose. */
  basicEncoding: BasicCredentialEncoding;
  /** With `auto`: the encoding the token endpoint accepted, once seen. */
  basicEncodingDetected: 'form-urlencoded' | 'raw' | null;
  scopeSyntax: ScopeSyntax;
  assertionAlg: AssertionAlg;
  connectionMode: ConnectionMode;
  createdAt: string;
  updatedAt: string;
}

/**
 * An organization as the JSON API returns it: its registration and its own connection's health
 * (from the Connections module; lastError said of the organization's own server).
 */
export interface OrganizationJson extends OrganizationView {
  isConnected: boolean;
  tokenExpiry: string | null;
  lastSync: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
}

const iso = (d: Date | null): string | null => d?.toISOString() ?? null;

export function toOrganizationView(org: Organization): OrganizationView {
  const server = serverLabel({ fhirBaseUrl: org.fhirBaseUrl, fhirServerName: org.fhirServerName });
  return {
    id: org.id,
    name: org.name,
    slug: org.slug,
    epicEnvironment: org.epicEnvironment,
    fhirBaseUrl: org.fhirBaseUrl,
    fhirServerName: org.fhirServerName ?? null,
    serverName: server.name,
    isEpic: server.isEpic,
    epicClientId: org.epicClientId,
    hasClientSecret: org.clientSecretEnc !== null,
    epicScopes: org.epicScopes ?? defaultScopes(org.epicConnectionMode),
    tokenAuthMethod: org.epicTokenAuthMethod,
    basicEncoding: org.epicBasicEncoding,
    basicEncodingDetected: org.epicBasicEncodingDetected,
    scopeSyntax: org.epicScopeSyntax,
    assertionAlg: org.epicAssertionAlg,
    connectionMode: org.epicConnectionMode,
    createdAt: org.createdAt.toISOString(),
    updatedAt: org.updatedAt.toISOString(),
  };
}

/** The JSON form of an organization with its connection row (none: never connected). */
export function toOrganizationJson<T extends OrganizationView>(
  view: T,
  connection: OrganizationConnectionState | undefined,
): T & OrganizationJson {
  const lastError = connection?.lastError ?? null;
  return {
    ...view,
    isConnected: connection?.isConnected ?? false,
    tokenExpiry: iso(connection?.tokenExpiry ?? null),
    lastSync: iso(connection?.lastSync ?? null),
    lastError:
      lastError === null ? null : speakOfServer(lastError, { isEpic: view.isEpic, name: view.serverName }),
    lastErrorAt: iso(connection?.lastErrorAt ?? null),
  };
}
