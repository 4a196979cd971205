import { Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';

import { AuditService } from 'src/audit/audit.service';
import { ConnectionsService } from 'src/connections/connections.service';
import { ConnectionMode } from 'src/organizations/organization.types';
import { OrganizationsService } from 'src/organizations/organizations.service';
import { Role } from 'src/users/user.types';
import { UsersService } from 'src/users/users.service';

import { AuthorizationCompletion, CompletionContext } from './authorization-completion';
import { CompletedAuthorization } from './authorization.types';
import { authorizeUrl } from './authorize-url';
import { EpicAuthErrorCode } from './epic-auth.errors';
import { BACKEND_NO_LAUNCH, launchRefused } from './launch-refusal';
import { normalizeIss } from './launch-iss';
import { scopesFor } from './launch-scopes';
import { PendingAuthorizationStore } from './pending-authorization.store';
import { SmartDiscoveryService } from './smart-discovery.service';

/**
 * The provider EHR launch (docs/epic-and-smart.md §7): starts it from the EHR's `iss` and `launch`,
 * and completes it by signing in the clinician the id_token names, with their launch credential.
 */
@Injectable()
export class ProviderLaunchService implements AuthorizationCompletion {
  readonly purpose = 'provider';
  private readonly logger = new Logger(ProviderLaunchService.name);

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
   * Starts an EHR launch: `iss` must be the registered FHIR base of an organization (the allow-list;
   * compared normalized, hosts exactly), and `launch` is echoed back with `aud` = the organization's
   * base and the provider scopes. The pending authorization is kept server-side by state only, not
   * bound to a browser session: an EHR may embed the app where cookies are unreliable, and several
   * launches can be in flight at once.
   */
  async start(
    iss: unknown,
    launch: unknown,
    orgSlug: unknown,
    bindingHash: string,
    now = new Date(),
  ): Promise<URL> {
    const normalized = normalizeIss(iss);
    if (!normalized) {
      throw launchRefused('The launch has no valid iss (the FHIR server that launched the app).');
    }
    if (typeof launch !== 'string' || launch.length === 0 || launch.length > 4096) {
      throw launchRefused('The launch has no launch token. Start the app from Epic again.');
    }
    const candidates = await this.organizations.findByFhirBase(normalized);
    const matches =
      typeof orgSlug === 'string' && orgSlug ? candidates.filter((c) => c.slug === orgSlug) : candidates;
    if (matches.length !== 1) {
      this.logger.warn(
        { candidates: candidates.length },
        'Refused an EHR launch from an unregistered or ambiguous iss',
      );
      throw launchRefused(
        matches.length === 0
          ? 'This FHIR server is not registered with this service. Ask your administrator to register it.'
          : 'Several organizations use this FHIR server: the launch URL registered at Epic must name one (?org=<slug>).',
      );
    }
    const registration = (await this.organizations.getEpicRegistration(matches[0].id))!;
    if (registration.connectionMode === ConnectionMode.Backend) throw launchRefused(BACKEND_NO_LAUNCH);
    const server = await this.discovery.discover(registration.fhirBaseUrl, {
      clientId: registration.clientId,
      authMethod: registration.tokenAuthMethod,
    });
    const scope = scopesFor('provider', registration.scopes, registration.scopeSyntax).join(' ');
    const started = await this.pending.create({
      purpose: 'provider',
      organizationId: registration.organizationId,
      userId: null,
      sessionId: '',
      bindingHash,
      now,
    });
    const url = await authorizeUrl(server, registration, started, { scope, launch });
    await this.audit.record({
      actor: null,
      organization: { id: registration.organizationId, name: registration.organizationName },
      action: 'epic.launch',
      detail: { stage: 'redirected', context: 'provider', scope },
    });
    this.logger.log({ orgId: registration.organizationId }, 'EHR launch: redirecting the provider to Epic');
    return url;
  }

  /**
   * The id_token must name a Practitioner. The provider user for (organization, fhirUser) is found
   * or created, and their credential (with the launch context) replaces their previous launch, in one
   * transaction.
   */
  async complete(context: CompletionContext): Promise<CompletedAuthorization> {
    const { registration, organization, tokens, fhirUser, response, fail } = context;
    const orgId = context.pending.organizationId;
    if (!fhirUser || !/(^|\/)Practitioner\/[^/]+$/.test(fhirUser)) {
      throw await fail(
        EpicAuthErrorCode.IdTokenInvalid,
        'Epic did not identify a clinician (the id_token has no Practitioner fhirUser); the launch cannot continue.',
      );
    }
    const launched = await this.dataSource.transaction(async (manager) => {
      const user = await this.users.findOrCreateLaunchUser(manager, orgId, Role.Provider, fhirUser);
      const stored = await this.connections.connectUser(manager, {
        organizationId: orgId,
        userId: user.id,
        purpose: 'provider',
        fhirBaseUrl: registration.fhirBaseUrl,
        tokens,
        fhirUser,
        needPatientBanner: readBoolean(response.need_patient_banner),
        smartStyleUrl:
          typeof response.smart_style_url === 'string' ? response.smart_style_url.slice(0, 2048) : null,
      });
      await this.audit.record(
        {
          actor: user,
          organization,
          action: 'epic.launch',
          detail: {
            stage: 'completed',
            context: 'provider',
            patient: tokens.patientId,
            encounter: tokens.encounterId,
          },
        },
        manager,
      );
      return { user, credentialId: stored.id };
    });
    this.logger.log({ orgId, userId: launched.user.id }, `EHR launch completed for organization ${orgId}`);
    return { kind: 'provider', organizationId: orgId, ...launched };
  }
}

/**
 * Epic sends need_patient_banner as "true"/"false" strings (Epic OAuth 2.0 tutorial, "Retrieving Launch
 * Context": https://fhir.epic.com/Documentation?docId=oauth2tutorial); SMART says boolean.
 */
function readBoolean(value: unknown): boolean | null {
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  return null;
}
