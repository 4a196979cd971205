import { Injectable, Logger } from '@nestjs/common';

import { OrganizationsService } from 'src/organizations/organizations.service';
import { Role } from 'src/users/user.types';
import { UsersService } from 'src/users/users.service';

import { AuthorizationCompletion, CompletionContext } from './authorization-completion';
import { CompletedAuthorization } from './authorization.types';
import { EpicAuthErrorCode } from './epic-auth.errors';
import { normalizeIss } from './launch-iss';
import { launchRefused } from './launch-refusal';
import { fhirUserId, LaunchSteps } from './launch-steps';

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
    private readonly users: UsersService,
    private readonly steps: LaunchSteps,
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
    // Signs a clinician in: bound to no session, and the EHR's launch goes to the authorize endpoint.
    const url = await this.steps.redirect({
      role: 'provider',
      registration,
      boundTo: null,
      bindingHash,
      launch,
      now,
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
    const { tokens, fhirUser, response, fail } = context;
    const orgId = context.pending.organizationId;
    if (!fhirUser || !fhirUserId(fhirUser, 'Practitioner')) {
      throw await fail(
        EpicAuthErrorCode.IdTokenInvalid,
        'Epic did not identify a clinician (the id_token has no Practitioner fhirUser); the launch cannot continue.',
      );
    }
    const launched = await this.steps.store(context, {
      role: 'provider',
      fhirUser,
      user: (manager) => this.users.findOrCreateLaunchUser(manager, orgId, Role.Provider, fhirUser),
      tokens,
      // The EHR's launch context: whether to show a patient banner, and its style.
      needPatientBanner: readBoolean(response.need_patient_banner),
      smartStyleUrl:
        typeof response.smart_style_url === 'string' ? response.smart_style_url.slice(0, 2048) : null,
      auditDetail: { patient: tokens.patientId, encounter: tokens.encounterId },
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
