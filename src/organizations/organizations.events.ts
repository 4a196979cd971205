/** Events the Organizations module emits; other modules react without being imported here. */
export enum OrganizationEvents {
  /** The Epic client id, FHIR base URL or environment changed: the stored connection is void. */
  EpicClientChanged = 'organizations.epic-client-changed',
}

export interface EpicClientChangedEvent {
  organizationId: string;
  organizationName: string;
  previousFhirBaseUrl: string | null;
  /** The organization's own tokens were deleted with the change (its connection now reads "not connected"). */
  tokensCleared: boolean;
  actor: { id: string; email: string } | null;
}
