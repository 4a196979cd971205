import { Injectable, Logger } from '@nestjs/common';

import { AuditActor, AuditService } from 'src/audit/audit.service';
import { ConnectionsService } from 'src/connections/connections.service';
import { ConnectionMode } from 'src/organizations/organization.types';
import { OrganizationsService } from 'src/organizations/organizations.service';

import { EpicAuthError, EpicAuthErrorCode } from './epic-auth.errors';
import { EpicOAuthClient, OAuthClientService } from './oauth-client.service';
import { OrganizationConnectionService } from './organization-connection.service';
import { describeClientCredentialsFailure } from './token-errors';
import { parseTokenResponse } from './token-response';

export interface BackendConnectResult {
  expiresAt: Date;
  scopes: string[];
}

/** A Connect-now attempt as the registration page reports it (the failure already recorded and audited). */
export type BackendConnectOutcome =
  ({ ok: true; serverName: string } & BackendConnectResult) | { ok: false; message: string };

/**
 * Connects an organization as a backend service (SMART Backend Services, docs/epic-and-smart.md §9):
 * no one signs in at Epic; the service asks for a token with client_credentials and a client
 * assertion signed by its own key, at once. Renewals go through TokenRefreshService like any
 * refresh. A failed attempt keeps the connection the organization already has.
 */
@Injectable()
export class BackendConnectionService {
  private readonly logger = new Logger(BackendConnectionService.name);

  constructor(
    private readonly organizations: OrganizationsService,
    private readonly connections: ConnectionsService,
    private readonly oauthClient: OAuthClientService,
    private readonly organizationConnection: OrganizationConnectionService,
    private readonly audit: AuditService,
  ) {}

  /** connect(), with the outcome as data: an EpicAuth failure becomes its message for the page. */
  async tryConnect(actor: AuditActor, organizationId: string): Promise<BackendConnectOutcome> {
    try {
      const result = await this.connect(actor, organizationId);
      const registration = await this.organizations.getEpicRegistration(organizationId);
      return { ok: true, serverName: registration?.serverName ?? 'the EHR', ...result };
    } catch (error) {
      if (!(error instanceof EpicAuthError)) throw error;
      return { ok: false, message: error.message };
    }
  }

  async connect(actor: AuditActor, organizationId: string, now = new Date()): Promise<BackendConnectResult> {
    const registration = await this.organizations.getEpicRegistration(organizationId);
    if (!registration) {
      throw new EpicAuthError(
        EpicAuthErrorCode.NotConfigured,
        'Register the Epic client ID and FHIR base URL before connecting.',
        { organizationId },
      );
    }
    if (registration.connectionMode !== ConnectionMode.Backend) {
      throw new EpicAuthError(
        EpicAuthErrorCode.NotConfigured,
        'This organization connects through an administrator’s sign-in at Epic, not as a backend service.',
        { organizationId },
      );
    }
    const organization = { id: registration.organizationId, name: registration.organizationName };
    const failed = async (code: EpicAuthErrorCode, failure: string, message: string, cause?: unknown) => {
      await this.connections.failed({ id: '', organizationId, userId: null }, message);
      await this.audit.record({
        actor,
        organization,
        action: 'epic.connect',
        outcome: 'failure',
        detail: { grant: 'client_credentials', failure },
      });
      this.logger.warn(
        { orgId: organizationId, failure, err: cause },
        `Backend-service connection of organization ${organizationId} failed: ${failure}`,
      );
      return new EpicAuthError(code, message, { cause, organizationId });
    };

    let client: EpicOAuthClient;
    try {
      client = await this.oauthClient.forOrganization(organizationId);
    } catch (error) {
      if (error instanceof EpicAuthError) throw await failed(error.code, error.code, error.message, error);
      throw error;
    }
    let response;
    try {
      this.logger.log(
        { orgId: organizationId },
        `Requested backend-service token for organization ${organizationId}`,
      );
      response = await this.oauthClient.clientCredentials(client);
    } catch (error) {
      const failure = describeClientCredentialsFailure(error);
      throw await failed(EpicAuthErrorCode.TokenExchangeFailed, failure.code, failure.message, error);
    }
    let tokens;
    try {
      // SMART Backend Services issue no refresh token; one sent anyway is not kept
      // (https://hl7.org/fhir/smart-app-launch/backend-services.html).
      tokens = { ...parseTokenResponse(response, now), refreshToken: null, refreshExpiresAt: null };
    } catch (error) {
      throw await failed(
        EpicAuthErrorCode.TokenExchangeFailed,
        'malformed_response',
        "Epic's token endpoint answered without an access token. Try again later.",
        error,
      );
    }

    await this.organizationConnection.storeOrganizationConnection({
      actor,
      organization: { ...organization, fhirBaseUrl: registration.fhirBaseUrl },
      tokens,
      fhirUser: null,
      grantType: 'client_credentials',
    });
    return { expiresAt: tokens.expiresAt, scopes: tokens.scopes };
  }
}
