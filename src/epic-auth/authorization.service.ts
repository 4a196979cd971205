/**
 * FhirClient's connection test still imports `AuthorizationService` (for `redirectUri` and
 * `registrationInfo`) and `organizationScopes` from here: `AuthorizationService` is
 * ConnectionLifecycleService under that name, so it injects the same provider. Everyone else imports
 * connection-lifecycle.service.ts and authorization.types.ts; once FhirClient does, this file goes.
 */
export { ConnectionLifecycleService as AuthorizationService } from './connection-lifecycle.service';
export { organizationScopes } from './authorization.types';
