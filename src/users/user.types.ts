/** Roles and password rules, shared by every module that checks who may do what. */
export enum Role {
  RootAdmin = 'root_admin',
  OrgAdmin = 'org_admin',
  Provider = 'provider',
  Patient = 'patient',
}

export const PASSWORD_MIN_LENGTH = 12;
