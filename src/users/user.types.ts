/** Roles and password rules, shared by every module that checks who may do what. */
export enum Role {
  RootAdmin = 'root_admin',
  OrgAdmin = 'org_admin',
  Provider = 'provider',
  Patient = 'patient',
}

export const PASSWORD_MIN_LENGTH = 12;

/** Where a launch user's contact address came from: the id_token's `email` claim, or the user. */
export type ContactEmailSource = 'id_token' | 'entered';

/** A provider's or patient's contact address for email about their own connections. */
export interface ContactEmail {
  address: string | null;
  source: ContactEmailSource | null;
  /** Whether it may be emailed: confirmed through the emailed link, or from a verified id_token. */
  confirmed: boolean;
}
