import { Organization } from '../entities/organization.entity';
import {
  AssertionAlg,
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
  epicClientId: string | null;
  hasClientSecret: boolean;
  /** Data scopes requested from Epic. */
  epicScopes: string;
  tokenAuthMethod: TokenAuthMethod;
  scopeSyntax: ScopeSyntax;
  assertionAlg: AssertionAlg;
  connectionMode: ConnectionMode;
  isConnected: boolean;
  tokenExpiry: string | null;
  lastSync: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
  createdAt: string;
  updatedAt: string;
}

const iso = (d: Date | null): string | null => d?.toISOString() ?? null;

export function toOrganizationView(org: Organization): OrganizationView {
  return {
    id: org.id,
    name: org.name,
    slug: org.slug,
    epicEnvironment: org.epicEnvironment,
    fhirBaseUrl: org.fhirBaseUrl,
    epicClientId: org.epicClientId,
    hasClientSecret: org.clientSecretEnc !== null,
    epicScopes: org.epicScopes ?? defaultScopes(org.epicConnectionMode),
    tokenAuthMethod: org.epicTokenAuthMethod,
    scopeSyntax: org.epicScopeSyntax,
    assertionAlg: org.epicAssertionAlg,
    connectionMode: org.epicConnectionMode,
    isConnected: org.isConnected,
    tokenExpiry: iso(org.tokenExpiry),
    lastSync: iso(org.lastSync),
    lastError: org.lastError,
    lastErrorAt: iso(org.lastErrorAt),
    createdAt: org.createdAt.toISOString(),
    updatedAt: org.updatedAt.toISOString(),
  };
}
