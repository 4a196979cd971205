import { Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';

import { AuditService } from 'src/audit/audit.service';
import { ConnectionsService } from 'src/connections/connections.service';
import { ConnectionMode } from 'src/organizations/organization.types';
import { OrganizationsService } from 'src/organizations/organizations.service';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';
import { UsersService } from 'src/users/users.service';

import { AuthorizationCompletion, CompletionContext } from './authorization-completion';
import { CompletedAuthorization } from './authorization.types';
import { authorizeUrl } from './authorize-url';
import { EpicAuthErrorCode } from './epic-auth.errors';
import { BACKEND_NO_LAUNCH, launchRefused } from './launch-refusal';
import { scopesFor } from './launch-scopes';
import { PendingAuthorizationStore } from './pending-authorization.store';
import { SmartDiscoveryService } from './smart-discovery.service';
import { ParsedTokenResponse } from './token-response';

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
    private readonly discovery: SmartDiscoveryService,
    private readonly pending: PendingAuthorizationStore,
    private readonly users: UsersService,
    private readonly connections: ConnectionsService,
    private readonly audit: AuditService,
    private readonly dataSource: DataSource,
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
    if (registration.connectionMode === ConnectionMode.Backend) throw launchRefused(BACKEND_NO_LAUNCH);
    const linking = user?.role === Role.Patient && user.organizationId === org.id;
    const server = await this.discovery.discover(registration.fhirBaseUrl, {
      clientId: registration.clientId,
      authMethod: registration.tokenAuthMethod,
    });
    const scope = scopesFor('patient', registration.scopes, registration.scopeSyntax).join(' ');
    const started = await this.pending.create({
      purpose: 'patient',
      organizationId: registration.organizationId,
      userId: linking ? user.id : null,
      sessionId: linking ? sessionId : '',
      bindingHash,
      now,
    });
    const url = await authorizeUrl(server, registration, started, { scope });
    await this.audit.record({
      actor: linking ? user : null,
      organization: { id: org.id, name: org.name },
      action: 'epic.launch',
      detail: { stage: 'redirected', context: 'patient', linking, scope },
    });
    return url;
  }

  /**
   * The id_token must name a Patient. The patient who started it links the account (`fhirUser` set
   * once); without one, that patient is found or created. Their credential is stored in the same
   * transaction.
   */
  async complete(context: CompletionContext): Promise<CompletedAuthorization> {
    const { pending, registration, organization, tokens, fhirUser, fail } = context;
    const orgId = pending.organizationId;
    if (!fhirUser || !/(^|\/)Patient\/[^/]+$/.test(fhirUser)) {
      throw await fail(
        EpicAuthErrorCode.IdTokenInvalid,
        'Epic did not identify a patient (the id_token has no Patient fhirUser); the account was not connected.',
      );
    }
    // Epic sends `patient` to patient-facing apps; a SMART server sends it only for `launch/patient`.
    // Either way the verified fhirUser names the patient who signed in.
    const patientTokens: ParsedTokenResponse = {
      ...tokens,
      patientId: tokens.patientId ?? /(?:^|\/)Patient\/([^/]+)$/.exec(fhirUser)![1],
    };
    const linked = await this.dataSource.transaction(async (manager) => {
      const user = pending.userId
        ? await this.users.linkLaunchUser(manager, pending.userId, orgId, fhirUser)
        : await this.users.findOrCreateLaunchUser(manager, orgId, Role.Patient, fhirUser);
      const stored = await this.connections.connectUser(manager, {
        organizationId: orgId,
        userId: user.id,
        purpose: 'patient',
        fhirBaseUrl: registration.fhirBaseUrl,
        tokens: patientTokens,
        fhirUser,
        needPatientBanner: null,
        smartStyleUrl: null,
      });
      await this.audit.record(
        {
          actor: user,
          organization,
          action: 'epic.launch',
          detail: { stage: 'completed', context: 'patient', refreshable: tokens.refreshToken !== null },
        },
        manager,
      );
      return { user, credentialId: stored.id };
    });
    this.logger.log(
      { orgId, userId: linked.user.id },
      `Patient connected an Epic account at organization ${orgId}`,
    );
    return { kind: 'patient', organizationId: orgId, ...linked };
  }
}
