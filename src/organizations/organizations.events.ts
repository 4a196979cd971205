/** Events the Organizations module emits; other modules react without being imported here. */
export enum OrganizationEvents {
  /** The Epic client id, FHIR base URL or environment changed: the stored connection is void. */
  EpicClientChanged = 'organizations.epic-client-changed',
  /** The organization was deleted (after the commit): its rows went with it (ON DELETE CASCADE). */
  Deleted = 'organizations.deleted',
}

export interface EpicClientChangedEvent {
  organizationId: string;
  organizationName: string;
  previousFhirBaseUrl: string | null;
  /** The organization's own tokens were deleted with the change (its connection now reads "not connected"). */
  tokensCleared: boolean;
  actor: { id: string; email: string } | null;
}

/**
 * `organizations.deleted`: emitted with `emitAsync` after the deletion committed, on the instance
 * that deleted it only (other instances learn of it from the database). Listeners drop what they
 * hold of the organization in memory.
 */
export interface OrganizationDeletedEvent {
  organizationId: string;
  organizationName: string;
  actor: { id: string; email: string } | null;
}
