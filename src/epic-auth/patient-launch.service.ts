import { Injectable, Logger } from '@nestjs/common';

import { OrganizationsService } from 'src/organizations/organizations.service';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';
import { UsersService } from 'src/users/users.service';

import { AuthorizationCompletion, CompletionContext } from './authorization-completion';
import { CompletedAuthorization } from './authorization.types';
import { EpicAuthErrorCode } from './epic-auth.errors';
import { launchRefused } from './launch-refusal';
import { fhirUserId, LaunchSteps } from './launch-steps';

/**
 * "Connect my Epic account" (standalone patient launch, docs/epic-and-smart.md §8): starts it for an
 * organization's slug, and completes it by linking or signing in the patient the id_token names.
 */
@Injectable()
export class PatientLaunchService implements AuthorizationCompletion {
  readonly purpose = 'patient';
  private readonly logger = new Logger(PatientLaunchService.name);

  constructor(
    private readonly organizations: OrganizationsService,
    private readonly users: UsersService,
    private readonly steps: LaunchSteps,
  ) {}

  /**
   * Starts a patient launch for the organization with this slug: patient scopes, no `launch`,
   * `aud` = the base. A signed-in patient of that organization links the credential to their account
   * (the authorization is then bound to their session); anyone else signs in this way as the patient
   * the verified id_token names.
   */
  async start(
    orgSlug: unknown,
    user: AuthUser | null,
    sessionId: string,
    bindingHash: string,
    now = new Date(),
  ): Promise<URL> {
    const org =
      typeof orgSlug === 'string' && /^[a-z0-9-]{1,100}$/.test(orgSlug)
        ? await this.organizations.findBySlug(orgSlug)
        : null;
    const registration = org ? await this.organizations.getEpicRegistration(org.id) : null;
    if (!org || !registration) {
      throw launchRefused(
        'This organization is unknown or not connected to Epic: check the link you followed.',
      );
    }
    // A signed-in patient of this organization links the account: bound to their session.
    const linking = user?.role === Role.Patient && user.organizationId === org.id;
    return this.steps.redirect({
      role: 'patient',
      registration,
      boundTo: linking ? { user, sessionId } : null,
      bindingHash,
      auditDetail: { linking },
      now,
    });
  }

  /**
   * The id_token must name a Patient. The patient who started it links the account (`fhirUser` set
   * once); without one, that patient is found or created. Their credential is stored in the same
   * transaction.
   */
  async complete(context: CompletionContext): Promise<CompletedAuthorization> {
    const { pending, tokens, fhirUser, fail } = context;
    const orgId = pending.organizationId;
    const patientId = fhirUser ? fhirUserId(fhirUser, 'Patient') : null;
    if (!fhirUser || !patientId) {
      throw await fail(
        EpicAuthErrorCode.IdTokenInvalid,
        'Epic did not identify a patient (the id_token has no Patient fhirUser); the account was not connected.',
      );
    }
    const linked = await this.steps.store(context, {
      role: 'patient',
      fhirUser,
      user: (manager) =>
        pending.userId
          ? this.users.linkLaunchUser(manager, pending.userId, orgId, fhirUser)
          : this.users.findOrCreateLaunchUser(manager, orgId, Role.Patient, fhirUser),
      // Epic sends `patient` to patient-facing apps; a SMART server sends it only for `launch/patient`.
      // Either way the verified fhirUser names the patient who signed in.
      tokens: { ...tokens, patientId: tokens.patientId ?? patientId },
      // A standalone launch has no EHR launch context.
      needPatientBanner: null,
      smartStyleUrl: null,
      auditDetail: { refreshable: tokens.refreshToken !== null },
    });
    this.logger.log(
      { orgId, userId: linked.user.id },
      `Patient connected an Epic account at organization ${orgId}`,
    );
    return { kind: 'patient', organizationId: orgId, ...linked };
  }
}
