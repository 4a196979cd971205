import { Inject, Injectable } from '@nestjs/common';
import * as oidc from 'openid-client';

import { ClientKeysService } from 'src/client-keys/client-keys.service';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { OutboundHttp } from 'src/outbound/outbound-http.service';
import { EpicRegistration, TokenAuthMethod } from 'src/organizations/organization.types';
import { OrganizationsService } from 'src/organizations/organizations.service';

import { shapeClientAssertion } from './client-assertion';
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
 * endpoints, client authentication (client_secret_basic as Epic documents, client_secret_post, or
 * private_key_jwt signed with the service's active key), and the timeout every call to Epic has.
 * Every token call (code exchange, refresh, client credentials) authenticates through here.
 */
@Injectable()
export class OAuthClientService {
  constructor(
    private readonly organizations: OrganizationsService,
    private readonly discovery: SmartDiscoveryService,
    private readonly clientKeys: ClientKeysService,
    private readonly outbound: OutboundHttp,
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

  /**
   * A backend-service token (SMART Backend Services, EPIC-SMART.md §9): client_credentials with a
   * client assertion and `system/` scopes. Epic decides the scopes from the app's registered APIs
   * and ignores the parameter; SMART servers need it.
   */
  clientCredentials(client: EpicOAuthClient): ReturnType<typeof oidc.clientCredentialsGrant> {
    return oidc.clientCredentialsGrant(client.oauth, { scope: client.registration.scopes });
  }

  /** openid-client's view of the server and our client. */
  async configuration(
    server: SmartConfiguration,
    registration: EpicRegistration,
  ): Promise<oidc.Configuration> {
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
      await this.clientAuthentication(server, registration),
    );
    // Bounds every token call, so a lock held around a refresh is never held for long.
    oauthConfig.timeout = Math.ceil(this.config.env.EPIC_HTTP_TIMEOUT_MS / 1000);
    // The token and revocation endpoints come from a discovery document: same address policy.
    oauthConfig[oidc.customFetch] = (url, options) => this.outbound.fetch(url, options as RequestInit);
    if (!this.config.isProduction) oidc.allowInsecureRequests(oauthConfig); // http only reaches loopback here
    return oauthConfig;
  }

  private async clientAuthentication(
    server: SmartConfiguration,
    registration: EpicRegistration,
  ): Promise<oidc.ClientAuth> {
    if (registration.tokenAuthMethod === TokenAuthMethod.PrivateKeyJwt) {
      // The key active now signs; a fresh assertion (new jti) is built for each request.
      const signing = await this.clientKeys.signingKey(registration.assertionAlg);
      return oidc.PrivateKeyJwt(
        { key: signing.key, kid: signing.kid },
        {
          [oidc.modifyAssertion]: (header, payload) =>
            shapeClientAssertion(header, payload, {
              tokenEndpoint: server.tokenEndpoint,
              kid: signing.kid,
              nowSeconds: Date.now() / 1000,
            }),
        },
      );
    }
    const clientSecret = await this.organizations.getClientSecret(registration.organizationId);
    if (!clientSecret) return oidc.None();
    // RFC 6749 §2.3.1: client_id and secret form-urlencoded in Basic auth, as Epic documents (§3);
    // or in the form body for servers that need it.
    return registration.tokenAuthMethod === TokenAuthMethod.ClientSecretPost
      ? oidc.ClientSecretPost(clientSecret)
      : oidc.ClientSecretBasic(clientSecret);
  }
}
