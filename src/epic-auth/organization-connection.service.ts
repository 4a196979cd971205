import { Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';

import { AuditActor, AuditService } from 'src/audit/audit.service';
import { ConnectionEvents } from 'src/connections/connections.events';
import { ConnectionsService } from 'src/connections/connections.service';
import { CredentialGrantType } from 'src/connections/connections.types';
import {
  ConnectionMode,
  EpicRegistration,
  ServerLabel,
  serverLabel,
} from 'src/organizations/organization.types';
import { OrganizationsService } from 'src/organizations/organizations.service';

import { AuthorizationCompletion, CompletionContext } from './authorization-completion';
import { CompletedAuthorization, organizationScopes } from './authorization.types';
import { authorizeUrl } from './authorize-url';
import { ConnectionLifecycleService } from './connection-lifecycle.service';
import { EpicAuthError, EpicAuthErrorCode } from './epic-auth.errors';
import { PendingAuthorizationStore } from './pending-authorization.store';
import { SmartDiscoveryService } from './smart-discovery.service';
import { ParsedTokenResponse } from './token-response';

/** Sets the browser-binding cookie and returns the hash the pending authorization keeps. */
export type BindBrowser = () => string;

/**
 * An organization's own connection made by an admin's sign-in at Epic: starts it (also as a
 * re-authentication), completes it at the callback, and stores any new organization connection.
 */
@Injectable()
export class OrganizationConnectionService implements AuthorizationCompletion {
  readonly purpose = 'organization';
  private readonly logger = new Logger(OrganizationConnectionService.name);

  constructor(
    private readonly organizations: OrganizationsService,
    private readonly discovery: SmartDiscoveryService,
    private readonly pending: PendingAuthorizationStore,
    private readonly lifecycle: ConnectionLifecycleService,
    private readonly connections: ConnectionsService,
    private readonly audit: AuditService,
    private readonly dataSource: DataSource,
  ) {}

  /**
   * Where Connect sends an admin: to the authorize endpoint, or for a backend service (nobody signs
   * in) to `/connect_epic/:id`, whose POST (CSRF-checked) connects it. The browser is bound only
   * when an authorization starts.
   */
  async authorizeRedirect(
    actor: AuditActor,
    sessionId: string,
    organizationId: string,
    bind: BindBrowser,
  ): Promise<string> {
    const registration = await this.organizations.getEpicRegistration(organizationId);
    if (isBackend(registration)) return `/connect_epic/${organizationId}`;
    return (await this.start(actor, sessionId, organizationId, registration, bind())).toString();
  }

  /** What the re-authenticate page says: whether tokens are held (they are cleared), and how it connects. */
  async reauthenticationPage(
    organizationId: string,
  ): Promise<{ hasTokens: boolean; backend: boolean; server: ServerLabel }> {
    const [{ hasTokens }, registration, org] = await Promise.all([
      this.lifecycle.status(organizationId),
      this.organizations.getEpicRegistration(organizationId),
      this.organizations.get(organizationId),
    ]);
    return { hasTokens, backend: isBackend(registration), server: serverLabel(org) };
  }

  /**
   * Re-authenticate (the manual retry): clears the tokens (audited), then starts the authorization
   * from scratch. Null for a backend service, which connects with its own grant instead. The
   * registration is read once, and the disconnect and the start both use it.
   */
  async reauthenticate(
    actor: AuditActor,
    sessionId: string,
    organizationId: string,
    bind: BindBrowser,
  ): Promise<{ authorizeUrl: URL; server: ServerLabel } | null> {
    const registration = await this.organizations.getEpicRegistration(organizationId);
    if (isBackend(registration)) return null;
    await this.lifecycle.disconnect(actor, organizationId, 'reauthenticate', { registration });
    const url = await this.start(actor, sessionId, organizationId, registration, bind());
    return { authorizeUrl: url, server: serverLabel(await this.organizations.get(organizationId)) };
  }

  /**
   * Starts an admin's authorization of the organization's connection: the organization scopes,
   * the pending authorization bound to the admin's session and browser. `registration` is the
   * organization's, as the caller read it (null: none is registered).
   */
  private async start(
    actor: AuditActor,
    sessionId: string,
    organizationId: string,
    registration: EpicRegistration | null,
    bindingHash: string,
    now = new Date(),
  ): Promise<URL> {
    if (!registration) {
      await this.audit.record({
        actor,
        organization: null,
        action: 'epic.authorize',
        outcome: 'failure',
        detail: { reason: EpicAuthErrorCode.NotConfigured, organizationId },
      });
      throw new EpicAuthError(
        EpicAuthErrorCode.NotConfigured,
        'Register the Epic client ID and FHIR base URL before connecting.',
      );
    }
    if (registration.connectionMode === ConnectionMode.Backend) {
      throw new EpicAuthError(
        EpicAuthErrorCode.NotConfigured,
        'This organization connects as a backend service: use Connect, which needs no sign-in at Epic.',
        { organizationId },
      );
    }
    const organization = { id: registration.organizationId, name: registration.organizationName };
    let server;
    try {
      server = await this.discovery.discoverFor(registration);
    } catch (error) {
      await this.audit.record({
        actor,
        organization,
        action: 'epic.authorize',
        outcome: 'failure',
        detail: { reason: error instanceof EpicAuthError ? error.code : 'error' },
      });
      throw error;
    }

    const scope = organizationScopes(registration);
    const started = await this.pending.create({
      purpose: 'organization',
      organizationId: registration.organizationId,
      userId: actor.id,
      sessionId,
      bindingHash,
      now,
    });
    const url = await authorizeUrl(server, registration, started, { scope });
    await this.audit.record({
      actor,
      organization,
      action: 'epic.authorize',
      detail: { stage: 'redirected', scope },
    });
    this.logger.log(
      { orgId: organizationId },
      'Redirecting an admin to Epic to authorize the organization connection',
    );
    return url;
  }

  /** The organization's new connection replaces the one it had; the admin lands on the organization page. */
  async complete(context: CompletionContext): Promise<CompletedAuthorization> {
    const { actor, organization, registration, tokens, fhirUser } = context;
    await this.storeOrganizationConnection({
      actor,
      organization: { ...organization, fhirBaseUrl: registration.fhirBaseUrl },
      tokens,
      fhirUser,
      grantType: 'authorization_code',
    });
    return { kind: 'organization', organizationId: context.pending.organizationId };
  }

  /**
   * Stores an organization's new connection in one transaction (replacing the one it had), marks
   * it connected, audits it, then tells listeners. Used by the authorization callback and by
   * backend-service connects.
   */
  async storeOrganizationConnection(input: {
    actor: AuditActor | null;
    /** With the FHIR base the tokens are for. */
    organization: { id: string; name: string; fhirBaseUrl: string };
    tokens: ParsedTokenResponse;
    fhirUser: string | null;
    grantType: CredentialGrantType;
  }): Promise<void> {
    const { actor, tokens, grantType } = input;
    const organization = { id: input.organization.id, name: input.organization.name };
    const refreshable = tokens.refreshToken !== null || grantType === 'client_credentials';
    const credential = await this.dataSource.transaction(async (manager) => {
      const stored = await this.connections.connectOrganization(manager, {
        organizationId: organization.id,
        fhirBaseUrl: input.organization.fhirBaseUrl,
        tokens,
        fhirUser: input.fhirUser,
        grantType,
      });
      await this.audit.record(
        {
          actor,
          organization,
          action: 'epic.connect',
          detail: {
            grant: grantType,
            scopes: tokens.scopes.join(' '),
            refreshable,
            expiresAt: tokens.expiresAt,
          },
        },
        manager,
      );
      return stored;
    });
    this.connections.announce(ConnectionEvents.Connected, credential);
    this.logger.log(
      { orgId: organization.id, grant: grantType, refreshable },
      `Connected organization ${organization.id} to Epic (${grantType})`,
    );
  }
}

/** Whether the organization connects as a backend service (BackendConnectionService's grant connects it). */
function isBackend(registration: EpicRegistration | null): boolean {
  return registration?.connectionMode === ConnectionMode.Backend;
}
