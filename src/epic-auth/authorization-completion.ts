import { AuditActor } from 'src/audit/audit.service';
import { EpicRegistration } from 'src/organizations/organization.types';

import { AuthorizationPurpose, CompletedAuthorization } from './authorization.types';
import { ExchangedCode } from './code-exchange.service';
import { PendingAuthorization } from './entities/pending-authorization.entity';
import { EpicAuthError, EpicAuthErrorCode } from './epic-auth.errors';

/**
 * Reports a failed callback (audited and logged; the stored connection is left as it was) and
 * returns the error to throw, its message said of the organization's server.
 */
export type FailAttempt = (
  code: EpicAuthErrorCode,
  message: string,
  cause?: unknown,
  detail?: object,
) => Promise<EpicAuthError>;

/** A callback that passed every check and whose code was exchanged: what a completion stores. */
export interface CompletionContext extends ExchangedCode {
  /** The pending authorization the callback spent. */
  pending: PendingAuthorization;
  registration: EpicRegistration;
  /** The organization as the audit names it. */
  organization: { id: string; name: string };
  /** Who started it, when it is bound to a user (an admin, or a patient linking their account). */
  actor: AuditActor | null;
  fail: FailAttempt;
}

/**
 * How the callback completes an authorization of one purpose (the pending authorization's): one
 * strategy each for the organization connection, the provider EHR launch and the patient launch.
 */
export interface AuthorizationCompletion {
  readonly purpose: AuthorizationPurpose;
  complete(context: CompletionContext): Promise<CompletedAuthorization>;
}
