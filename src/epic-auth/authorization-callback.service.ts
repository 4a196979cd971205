import { Injectable, Logger } from '@nestjs/common';

import { AuditActor, AuditService } from 'src/audit/audit.service';
import { EpicRegistration, speakOfServer } from 'src/organizations/organization.types';
import { OrganizationsService } from 'src/organizations/organizations.service';
import { UsersService } from 'src/users/users.service';

import { AuthorizationCompletion, FailAttempt } from './authorization-completion';
import { AuthorizationPurpose, CompletedAuthorization } from './authorization.types';
import { CodeExchangeService } from './code-exchange.service';
import { EpicAuthError, EpicAuthErrorCode } from './epic-auth.errors';
import { OrganizationConnectionService } from './organization-connection.service';
import { PatientLaunchService } from './patient-launch.service';
import { PendingAuthorizationStore } from './pending-authorization.store';
import { ProviderLaunchService } from './provider-launch.service';
import { SmartConfiguration } from './smart-configuration';
import { SmartDiscoveryService } from './smart-discovery.service';

/** A callback in a browser that did not start the authorization (browser-binding.ts). */
const ANOTHER_BROWSER =
  'This sign-in was started in another browser, or this browser blocked its cookie, so it was not completed and nobody was signed in here. If someone sent you this link, ignore it.';
const START_AGAIN: Record<string, string> = {
  organization: 'To connect the organization, use Connect on its registration page in this browser.',
  provider: 'To open the app, launch it again from inside the EHR.',
  patient: 'To connect your account, start again from the "Connect my account" link of your organization.',
};

/**
 * The callback (`/fhir/epic-callback`) of every authorization: checks it, spends the pending
 * authorization, has the code exchanged, and hands the result to the completion of its purpose.
 */
@Injectable()
export class AuthorizationCallbackService {
  private readonly logger = new Logger(AuthorizationCallbackService.name);
  private readonly completions: ReadonlyMap<AuthorizationPurpose, AuthorizationCompletion>;

  constructor(
    private readonly pending: PendingAuthorizationStore,
    private readonly organizations: OrganizationsService,
    private readonly users: UsersService,
    private readonly discovery: SmartDiscoveryService,
    private readonly codeExchange: CodeExchangeService,
    private readonly audit: AuditService,
    private readonly organizationConnection: OrganizationConnectionService,
    providerLaunch: ProviderLaunchService,
    patientLaunch: PatientLaunchService,
  ) {
    const completions: AuthorizationCompletion[] = [organizationConnection, providerLaunch, patientLaunch];
    this.completions = new Map(completions.map((completion) => [completion.purpose, completion]));
  }

  /**
   * Completes an authorization at the callback. The state must be known, unused, unexpired and
   * from this browser and, where bound, this session (consumed atomically, so a replay finds
   * nothing). Then the code is exchanged, the id_token verified, and the completion of the
   * authorization's purpose stores the result. A failure is audited and changes nothing stored.
   */
  async complete(
    sessionId: string,
    query: Record<string, unknown>,
    bindingHash: string,
    now = new Date(),
  ): Promise<CompletedAuthorization> {
    const state = typeof query.state === 'string' ? query.state : '';
    if (!state) throw invalidState('The response from Epic has no state. Start the connection again.');
    // Consumed only by the browser that started it: a callback URL carried to another browser
    // (sign-in CSRF) leaves the state unspent and changes no session.
    const pending = await this.pending.consume(state, bindingHash, now);
    if (!pending) {
      const other = await this.pending.findUnspent(state);
      if (other) {
        this.logger.warn(
          { orgId: other.organizationId, purpose: other.purpose },
          'Refused a callback from a browser other than the one that started the authorization',
        );
        throw invalidState(`${ANOTHER_BROWSER} ${START_AGAIN[other.purpose] ?? START_AGAIN.organization}`);
      }
      throw invalidState('This authorization is unknown or was already used. Start the connection again.');
    }
    const orgId = pending.organizationId;
    if (new Date(pending.expiresAt) <= now) {
      throw invalidState('This authorization took more than 10 minutes. Start the connection again.', orgId);
    }
    // An organization connection (and a patient linking an account) is bound to the session that
    // started it; a launch that signs someone in is bound to its state only.
    if ((pending.purpose === 'organization' || pending.userId !== null) && pending.sessionId !== sessionId) {
      // RFC 9700 §4.7: a state from another browser session is a CSRF / injection attempt.
      throw invalidState(
        'This authorization was started in another browser session. Start it again here.',
        orgId,
      );
    }
    const registration = await this.organizations.getEpicRegistration(orgId);
    const actor = pending.userId
      ? { id: pending.userId, email: await this.actorLabel(pending.userId) }
      : null;
    const organization = registration
      ? { id: orgId, name: registration.organizationName }
      : { id: orgId, name: orgId };
    const fail = this.failure(actor, organization, registration);

    if (typeof query.error === 'string') {
      const description =
        typeof query.error_description === 'string' ? query.error_description.slice(0, 300) : '';
      throw await fail(
        EpicAuthErrorCode.AuthorizationDenied,
        query.error === 'access_denied'
          ? 'Epic did not grant access (access_denied): the sign-in or consent at Epic was declined.'
          : `Epic refused the authorization request (${query.error.slice(0, 60)})${description ? `: ${description}` : ''}.`,
        undefined,
        { error: query.error.slice(0, 60) },
      );
    }
    if (!registration) {
      throw await fail(EpicAuthErrorCode.NotConfigured, 'The Epic client registration was removed.');
    }
    // RFC 6749 §4.1.2: a successful response carries the code; without one nothing can be exchanged.
    if (typeof query.code !== 'string' || query.code.length === 0 || query.code.length > 4096) {
      throw await fail(
        EpicAuthErrorCode.InvalidCallback,
        'The response from Epic has no authorization code, so the connection cannot be completed. Start it again.',
        undefined,
        { reason: 'no_code' },
      );
    }

    let server: SmartConfiguration;
    try {
      server = await this.discovery.discoverFor(registration);
    } catch (error) {
      throw await fail(EpicAuthErrorCode.DiscoveryFailed, (error as Error).message, error);
    }

    const codeVerifier = this.pending.codeVerifier(pending);
    // The callback URL as registered (PUBLIC_BASE_URL), with the query Epic sent: never the Host header.
    const callbackUrl = new URL(pending.redirectUri);
    for (const [key, value] of Object.entries(query)) {
      if (typeof value === 'string') callbackUrl.searchParams.set(key, value);
    }

    // RFC 9207: a server that names itself in the response must be the one this authorization went to.
    if (query.iss !== undefined && (server.issuer === undefined || query.iss !== server.issuer)) {
      throw await fail(
        EpicAuthErrorCode.InvalidCallback,
        'The response names another authorization server (its iss parameter does not match this organization’s server), so it was refused. Start the connection again.',
        undefined,
        { reason: 'iss_mismatch' },
      );
    }

    const exchanged = await this.codeExchange.exchange(
      server,
      registration,
      { url: callbackUrl, codeVerifier, state, nonce: pending.nonce, now },
      fail,
    );
    // Rows are written with one of the three purposes; the organization's is the fallback it always was.
    const completion = this.completions.get(pending.purpose) ?? this.organizationConnection;
    return completion.complete({ pending, registration, organization, actor, ...exchanged, fail });
  }

  /**
   * A failed attempt changes nothing about the stored connection: a declined or broken reconnect
   * must not mark a working connection as failed. The attempt is audited, and the person who
   * tried sees the message (the error page).
   */
  private failure(
    actor: AuditActor | null,
    organization: { id: string; name: string },
    registration: EpicRegistration | null,
  ): FailAttempt {
    const orgId = organization.id;
    return async (code, message, cause, detail = {}) => {
      await this.audit.record({
        actor,
        organization,
        action: 'epic.connect',
        outcome: 'failure',
        detail: { code, ...detail },
      });
      this.logger.warn(
        { orgId, failure: code, err: cause },
        `Epic connection failed for organization ${orgId}: ${code}`,
      );
      const said = registration
        ? speakOfServer(message, { isEpic: registration.isEpic, name: registration.serverName })
        : message;
      return new EpicAuthError(code, said, { cause, organizationId: orgId });
    };
  }

  private async actorLabel(userId: string): Promise<string> {
    return (await this.users.emailOf(userId)) ?? 'unknown';
  }
}

function invalidState(message: string, organizationId?: string): EpicAuthError {
  return new EpicAuthError(EpicAuthErrorCode.InvalidState, message, { organizationId });
}
