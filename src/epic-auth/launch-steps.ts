import { Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

import { AuditService } from 'src/audit/audit.service';
import { ConnectionsService } from 'src/connections/connections.service';
import { ConnectionMode, EpicRegistration } from 'src/organizations/organization.types';
import { AuthUser } from 'src/users/user.view';
import { UsersService } from 'src/users/users.service';

import { CompletionContext } from './authorization-completion';
import { authorizeUrl } from './authorize-url';
import { BACKEND_NO_LAUNCH, launchRefused } from './launch-refusal';
import { scopesFor } from './launch-scopes';
import { PendingAuthorizationStore } from './pending-authorization.store';
import { SmartDiscoveryService } from './smart-discovery.service';
import { ParsedTokenResponse } from './token-response';

/** The two launches that sign a user in: a provider's EHR launch and a patient's standalone launch. */
export type LaunchRole = 'provider' | 'patient';

/**
 * The id of the resource `fhirUser` names when it is of this type (`Practitioner/123`, or an
 * absolute URL ending so), else null.
 */
export function fhirUserId(fhirUser: string, type: 'Practitioner' | 'Patient'): string | null {
  return new RegExp(`(?:^|/)${type}/([^/]+)$`).exec(fhirUser)?.[1] ?? null;
}

/** What one role's launch start adds to the steps every launch start shares. */
export interface LaunchRedirect {
  role: LaunchRole;
  /** The organization's registration, as the role found it. */
  registration: EpicRegistration;
  /** Who the authorization is bound to (a patient linking their account); null signs someone in. */
  boundTo: { user: AuthUser; sessionId: string } | null;
  bindingHash: string;
  /** The EHR's `launch`, echoed to the authorize endpoint (provider EHR launch only). */
  launch?: string;
  /** The role's own facts for the audit, besides stage, context and scope. */
  auditDetail?: Record<string, unknown>;
  now: Date;
}

/** What one role's launch completion stores, besides what every launch completion stores. */
export interface LaunchCredential {
  role: LaunchRole;
  /** The verified fhirUser, already checked to name the role's resource type. */
  fhirUser: string;
  /** How the role finds (or creates, or links) the user the launch signs in, in the transaction. */
  user: (manager: EntityManager) => Promise<AuthUser>;
  tokens: ParsedTokenResponse;
  needPatientBanner: boolean | null;
  smartStyleUrl: string | null;
  /** The role's own facts for the audit, besides stage and context. */
  auditDetail: Record<string, unknown>;
}

/**
 * The steps the provider and patient launches share (ProviderLaunchService, PatientLaunchService):
 * refusing a backend-service client, discovery, the role's scopes, the pending authorization and
 * the authorize URL, audited; and at completion, the user and their credential stored and audited
 * in one transaction. What differs between the roles stays in their services.
 */
@Injectable()
export class LaunchSteps {
  constructor(
    private readonly discovery: SmartDiscoveryService,
    private readonly pending: PendingAuthorizationStore,
    private readonly connections: ConnectionsService,
    private readonly audit: AuditService,
    private readonly dataSource: DataSource,
    private readonly users: UsersService,
  ) {}

  /** Starts the launch's authorization: the URL of the authorize request to redirect to. */
  async redirect(input: LaunchRedirect): Promise<URL> {
    const { role, registration, boundTo } = input;
    if (registration.connectionMode === ConnectionMode.Backend) throw launchRefused(BACKEND_NO_LAUNCH);
    const server = await this.discovery.discoverFor(registration);
    const scope = scopesFor(role, registration.scopes, registration.scopeSyntax).join(' ');
    const started = await this.pending.create({
      purpose: role,
      organizationId: registration.organizationId,
      userId: boundTo?.user.id ?? null,
      sessionId: boundTo?.sessionId ?? '',
      bindingHash: input.bindingHash,
      now: input.now,
    });
    const url = await authorizeUrl(server, registration, started, { scope, launch: input.launch });
    await this.audit.record({
      actor: boundTo?.user ?? null,
      organization: { id: registration.organizationId, name: registration.organizationName },
      action: 'epic.launch',
      detail: { stage: 'redirected', context: role, ...input.auditDetail, scope },
    });
    return url;
  }

  /** Stores the launch's user and credential (replacing their previous launch) and audits it, in one transaction. */
  async store(
    context: CompletionContext,
    credential: LaunchCredential,
  ): Promise<{ user: AuthUser; credentialId: string }> {
    const { role, fhirUser, tokens } = credential;
    const organizationId = context.pending.organizationId;
    return this.dataSource.transaction(async (manager) => {
      const user = await credential.user(manager);
      // Where they are emailed when this connection ends (src/connection-health/README.md), unless
      // they entered or cleared an address themselves.
      if (context.email) await this.users.recordClaimedEmail(manager, user.id, context.email);
      const stored = await this.connections.connectUser(manager, {
        organizationId,
        userId: user.id,
        purpose: role,
        fhirBaseUrl: context.registration.fhirBaseUrl,
        tokens,
        fhirUser,
        needPatientBanner: credential.needPatientBanner,
        smartStyleUrl: credential.smartStyleUrl,
      });
      await this.audit.record(
        {
          actor: user,
          organization: context.organization,
          action: 'epic.launch',
          detail: { stage: 'completed', context: role, ...credential.auditDetail },
        },
        manager,
      );
      return { user, credentialId: stored.id };
    });
  }
}
