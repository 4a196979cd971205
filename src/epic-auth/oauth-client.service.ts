import { Inject, Injectable } from '@nestjs/common';
import * as oidc from 'openid-client';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { EpicRegistration, TokenAuthMethod } from 'src/organizations/organization.types';
import { OrganizationsService } from 'src/organizations/organizations.service';

import { EpicAuthError, EpicAuthErrorCode } from './epic-auth.errors';
import { SmartConfiguration } from './smart-configuration';
import { SmartDiscoveryService } from './smart-discovery.service';

/** An organization's Epic client as openid-client sees it, with the server it talks to. */
export interface EpicOAuthClient {
  registration: EpicRegistration;
  server: SmartConfiguration;
  oauth: oidc.Configuration;
}

/**
 * Builds openid-client configurations for an organization's registered Epic client: discovered
 * endpoints, client authentication (client_secret_basic as Epic documents, or client_secret_post),
 * and the timeout every call to Epic has.
 */
@Injectable()
export class OAuthClientService {
  constructor(
    private readonly organizations: OrganizationsService,
    private readonly discovery: SmartDiscoveryService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * The organization's client with discovered endpoints. Reads the database (registration and
   * secret) and the network: call it before taking a lock, never inside a transaction.
   */
  async forOrganization(organizationId: string): Promise<EpicOAuthClient> {
    const registration = await this.organizations.getEpicRegistration(organizationId);
    if (!registration) {
      throw new EpicAuthError(EpicAuthErrorCode.NotConfigured, 'The Epic client registration was removed.', {
        organizationId,
      });
    }
    const server = await this.discovery.discover(registration.fhirBaseUrl, {
      clientId: registration.clientId,
      authMethod: registration.tokenAuthMethod,
    });
    return { registration, server, oauth: await this.configuration(server, registration) };
  }

  /** openid-client's view of the server and our client. */
  async configuration(
    server: SmartConfiguration,
    registration: EpicRegistration,
  ): Promise<oidc.Configuration> {
    const clientSecret = await this.organizations.getClientSecret(registration.organizationId);
    const oauthConfig = new oidc.Configuration(
      {
        issuer: server.issuer ?? new URL(server.tokenEndpoint).origin,
        authorization_endpoint: server.authorizationEndpoint,
        token_endpoint: server.tokenEndpoint,
        jwks_uri: server.jwksUri,
        revocation_endpoint: server.revocationEndpoint,
      },
      registration.clientId,
      undefined,
      // RFC 6749 §2.3.1: client_id and secret form-urlencoded in Basic auth, as Epic documents (§3);
      // or in the form body for servers that need it.
      !clientSecret
        ? oidc.None()
        : registration.tokenAuthMethod === TokenAuthMethod.ClientSecretPost
          ? oidc.ClientSecretPost(clientSecret)
          : oidc.ClientSecretBasic(clientSecret),
    );
    // Bounds every token call, so a lock held around a refresh is never held for long.
    oauthConfig.timeout = Math.ceil(this.config.env.EPIC_HTTP_TIMEOUT_MS / 1000);
    if (!this.config.isProduction) oidc.allowInsecureRequests(oauthConfig); // http only reaches loopback here
    return oauthConfig;
  }
}
