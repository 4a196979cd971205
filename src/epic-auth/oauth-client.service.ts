import { randomUUID } from 'node:crypto';

import { Inject, Injectable, Logger } from '@nestjs/common';
import * as oidc from 'openid-client';

import { ClientKeysService } from 'src/client-keys/client-keys.service';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { OutboundHttp } from 'src/outbound/outbound-http.service';
import { EpicRegistration, TokenAuthMethod } from 'src/organizations/organization.types';
import { ClientSecretBindingError, OrganizationsService } from 'src/organizations/organizations.service';

import { shapeClientAssertion } from './client-assertion';
import { EpicAuthError, EpicAuthErrorCode } from './epic-auth.errors';
import { SmartConfiguration } from './smart-configuration';
import { SmartDiscoveryService } from './smart-discovery.service';
import { oauthErrorCode } from './token-errors';

/** An organization's Epic client as openid-client sees it, with the server it talks to. */
export interface EpicOAuthClient {
  registration: EpicRegistration;
  server: SmartConfiguration;
  /** The configuration token calls use first. */
  oauth: oidc.Configuration;
  /** client_secret_basic on `auto`: the other Basic encoding, tried once after `invalid_client`. */
  otherEncoding?: oidc.Configuration;
}

/**
 * Builds openid-client configurations for an organization's registered Epic client: discovered
 * endpoints, client authentication (client_secret_basic as Epic documents, client_secret_post, or
 * private_key_jwt signed with the service's active key), and the timeout every call to Epic has.
 * Every token call (code exchange, refresh, client credentials) authenticates through here.
 */
@Injectable()
export class OAuthClientService {
  private readonly logger = new Logger(OAuthClientService.name);

  constructor(
    private readonly organizations: OrganizationsService,
    private readonly discovery: SmartDiscoveryService,
    private readonly clientKeys: ClientKeysService,
    private readonly outbound: OutboundHttp,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * The organization's client with discovered endpoints, ready to call the token endpoint: the
   * registration, the secret and the signing key are read here, so a token call made with it touches
   * no database before it sends (a refresh holds its lease meanwhile). Call it before taking a lock,
   * never inside a transaction.
   */
  async forOrganization(organizationId: string): Promise<EpicOAuthClient> {
    const registration = await this.organizations.getEpicRegistration(organizationId);
    if (!registration) {
      throw new EpicAuthError(EpicAuthErrorCode.NotConfigured, 'The Epic client registration was removed.', {
        organizationId,
      });
    }
    const server = await this.discovery.discoverFor(registration);
    return this.prepare(server, registration);
  }

  /**
   * A backend-service token (SMART Backend Services, https://hl7.org/fhir/smart-app-launch/backend-services.html):
   * client_credentials with a client assertion and `system/` scopes. Epic decides the scopes from
   * the app's registered APIs and ignores the parameter; SMART servers need it.
   */
  clientCredentials(client: EpicOAuthClient): ReturnType<typeof oidc.clientCredentialsGrant> {
    return oidc.clientCredentialsGrant(client.oauth, { scope: client.registration.scopes });
  }

  /**
   * A refresh-token grant (RFC 6749 §6). The app needs no id_token at refresh, so one in the answer is
   * dropped unread (tokenEndpointFetch): a 200 with new tokens (and perhaps a rotated refresh token)
   * is never thrown away because an optional id_token fails openid-client's checks (OpenID Connect
   * Core §12.2 lets servers send one, and some send one without `aud`).
   */
  refresh(client: EpicOAuthClient, refreshToken: string): ReturnType<typeof oidc.refreshTokenGrant> {
    return this.tokenCall(client, (config) => oidc.refreshTokenGrant(config, refreshToken));
  }

  /** The authorization-code exchange (RFC 6749 §4.1.3, with the PKCE verifier and id_token checks). */
  async exchangeCode(
    server: SmartConfiguration,
    registration: EpicRegistration,
    callbackUrl: URL,
    checks: { pkceCodeVerifier: string; expectedState: string; expectedNonce?: string },
  ): ReturnType<typeof oidc.authorizationCodeGrant> {
    return this.tokenCall(await this.prepare(server, registration), (config) =>
      oidc.authorizationCodeGrant(config, callbackUrl, checks),
    );
  }

  /**
   * Proves the client credentials without anyone signing in: a refresh-token grant with a token that
   * cannot exist. The server must authenticate the client before it looks at the grant (RFC 6749
   * §3.2.1, §5.2), so `invalid_client` means the credentials are wrong, and `invalid_grant` (or
   * `unauthorized_client`: a client without refresh tokens) means they were accepted. With
   * client_secret_basic on `auto`, this is also where the encoding is learned.
   */
  async checkCredentials(client: EpicOAuthClient): Promise<CredentialsCheck> {
    const probe = `epic-connect-credentials-check-${randomUUID()}`;
    let encoding: BasicEncodingName = client.registration.basicEncoding.use;
    try {
      await this.tokenCall(client, (config) => oidc.refreshTokenGrant(config, probe), {
        acceptedDespite: credentialsAccepted,
        onAttempt: (e) => (encoding = e),
      });
      // No server should honour an unknown refresh token; if it did, it accepted the client at least.
      return { outcome: 'accepted', code: 'accepted', encoding };
    } catch (error) {
      const code = oauthErrorCode(error);
      if (code === 'invalid_client') return { outcome: 'rejected', code };
      if (credentialsAccepted(error)) return { outcome: 'accepted', code: code!, encoding };
      return { outcome: 'inconclusive', code: code ?? 'no_oauth_error', error };
    }
  }

  /** openid-client's view of the server and our client (the encoding it would use first). */
  async configuration(
    server: SmartConfiguration,
    registration: EpicRegistration,
  ): Promise<oidc.Configuration> {
    return (await this.prepare(server, registration)).oauth;
  }

  /**
   * Builds the client's configurations: the Basic encoding to send first and, with `auto` and
   * credentials whose two encodings differ, the other one for a single retry.
   */
  private async prepare(
    server: SmartConfiguration,
    registration: EpicRegistration,
  ): Promise<EpicOAuthClient> {
    const secret =
      registration.tokenAuthMethod === TokenAuthMethod.PrivateKeyJwt
        ? null
        : await this.secretFor(registration, server);
    const { use, fallback } = registration.basicEncoding;
    const adaptive =
      registration.tokenAuthMethod === TokenAuthMethod.ClientSecretBasic &&
      secret !== null &&
      fallback &&
      basicEncodingsDiffer(registration.clientId, secret);
    return {
      registration,
      server,
      oauth: await this.build(server, registration, secret, use),
      ...(adaptive ? { otherEncoding: await this.build(server, registration, secret, otherThan(use)) } : {}),
    };
  }

  /**
   * Runs one call to the token endpoint. With client_secret_basic on `auto` and credentials whose two
   * encodings differ, an `invalid_client` is answered by one retry with the other encoding (the
   * server authenticates the client first, so nothing was spent), and whichever the server accepted
   * is remembered for the organization. Epic documents the RFC 6749 §2.3.1 form; servers that compare
   * the header as sent reject it, as a developer reported for Epic itself
   * (http://community.fhir.org/t/invalid-client-error-from-epic/4312). Nothing here waits on the
   * database: what is learned is written in the background.
   */
  private async tokenCall<T>(
    client: EpicOAuthClient,
    call: (config: oidc.Configuration) => Promise<T>,
    options: TokenCallOptions = {},
  ): Promise<T> {
    const { registration, otherEncoding } = client;
    const { use, detected } = registration.basicEncoding;
    const learned = (encoding: BasicEncodingName) => {
      if (otherEncoding && (encoding !== use || !detected)) void this.remember(registration, encoding);
    };
    let first: unknown;
    try {
      options.onAttempt?.(use);
      const result = await call(client.oauth);
      learned(use);
      return result;
    } catch (error) {
      if (!otherEncoding || oauthErrorCode(error) !== 'invalid_client') {
        if (options.acceptedDespite?.(error)) learned(use);
        throw error;
      }
      first = error;
    }
    const other = otherThan(use);
    try {
      options.onAttempt?.(other);
      const result = await call(otherEncoding);
      learned(other);
      return result;
    } catch (error) {
      // Refused both ways: the credentials themselves are wrong; report the first answer.
      if (oauthErrorCode(error) === 'invalid_client') throw first;
      if (options.acceptedDespite?.(error)) learned(other);
      throw error;
    }
  }

  /**
   * The secret for this server's token endpoint; another origin than it is bound to gets none. The
   * registration already says whether a secret is saved: without one, nothing more is read.
   */
  private async secretFor(
    registration: EpicRegistration,
    server: SmartConfiguration,
  ): Promise<string | null> {
    if (!registration.hasClientSecret) return null;
    try {
      return await this.organizations.getClientSecretFor(registration.organizationId, server.tokenEndpoint);
    } catch (error) {
      if (!(error instanceof ClientSecretBindingError)) throw error;
      this.logger.warn(
        { orgId: registration.organizationId, bound: error.boundOrigin, requested: error.requestedOrigin },
        'Refused to send the client secret to a token endpoint on another origin',
      );
      throw new EpicAuthError(EpicAuthErrorCode.ClientSecretRefused, error.message, {
        organizationId: registration.organizationId,
      });
    }
  }

  private async remember(registration: EpicRegistration, encoding: BasicEncodingName): Promise<void> {
    try {
      const saved = await this.organizations.recordDetectedBasicEncoding(
        registration.organizationId,
        registration.clientId,
        encoding,
      );
      if (saved) {
        this.logger.log(
          { orgId: registration.organizationId, basicEncoding: encoding },
          `The token endpoint accepts ${encoding} Basic credentials for organization ${registration.organizationId}`,
        );
      }
    } catch (error) {
      this.logger.warn(
        { orgId: registration.organizationId, err: error },
        'Could not record the Basic encoding',
      );
    }
  }

  private async build(
    server: SmartConfiguration,
    registration: EpicRegistration,
    secret: string | null,
    encoding: BasicEncodingName,
  ): Promise<oidc.Configuration> {
    const oauthConfig = new oidc.Configuration(
      {
        issuer: server.issuer ?? new URL(server.tokenEndpoint).origin,
        authorization_endpoint: server.authorizationEndpoint,
        token_endpoint: server.tokenEndpoint,
        jwks_uri: server.jwksUri,
        // Revocation authenticates like a token call and carries the tokens: only on the token
        // endpoint's origin, which the client secret is bound to.
        revocation_endpoint: sameOrigin(server.revocationEndpoint, server.tokenEndpoint)
          ? server.revocationEndpoint
          : undefined,
      },
      registration.clientId,
      undefined,
      await this.clientAuthentication(server, registration, secret, encoding),
    );
    // Bounds every token call, so a refresh lease is never held for long.
    oauthConfig.timeout = Math.ceil(this.config.env.EPIC_HTTP_TIMEOUT_MS / 1000);
    // The token and revocation endpoints come from a discovery document: same address policy.
    oauthConfig[oidc.customFetch] = (url, init) =>
      tokenEndpointFetch(this.outbound.fetch, url, init as RequestInit);
    if (!this.config.isProduction) oidc.allowInsecureRequests(oauthConfig); // http only reaches loopback here
    return oauthConfig;
  }

  private async clientAuthentication(
    server: SmartConfiguration,
    registration: EpicRegistration,
    secret: string | null,
    encoding: BasicEncodingName,
  ): Promise<oidc.ClientAuth> {
    if (registration.tokenAuthMethod === TokenAuthMethod.PrivateKeyJwt) {
      // The key active now in the organization's environment's set signs (Epic verifies it with
      // that environment's JWK Set URL); a fresh assertion (new jti) is built for each request.
      const signing = await this.clientKeys.signingKey(registration.assertionAlg, registration.environment);
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
    if (!secret) return oidc.None();
    if (registration.tokenAuthMethod === TokenAuthMethod.ClientSecretPost) {
      return oidc.ClientSecretPost(secret);
    }
    // RFC 6749 §2.3.1 (openid-client's ClientSecretBasic), or the ID and secret as they are.
    return encoding === 'raw' ? rawClientSecretBasic(secret) : oidc.ClientSecretBasic(secret);
  }
}

type BasicEncodingName = 'form-urlencoded' | 'raw';

function sameOrigin(url: string | undefined, other: string): url is string {
  return url !== undefined && new URL(url).origin === new URL(other).origin;
}

const otherThan = (encoding: BasicEncodingName): BasicEncodingName =>
  encoding === 'raw' ? 'form-urlencoded' : 'raw';

interface TokenCallOptions {
  /** An error that still proves the server accepted the client (the credentials check). */
  acceptedDespite?: (error: unknown) => boolean;
  /** Told which Basic encoding each attempt sends (the credentials check reports the accepted one). */
  onAttempt?: (encoding: BasicEncodingName) => void;
}

export type CredentialsCheck =
  | { outcome: 'accepted'; code: string; encoding: BasicEncodingName }
  | { outcome: 'rejected'; code: string }
  | { outcome: 'inconclusive'; code: string; error: unknown };

/** Errors a token endpoint gives only after it authenticated the client. */
function credentialsAccepted(error: unknown): boolean {
  const code = oauthErrorCode(error);
  return code === 'invalid_grant' || code === 'unauthorized_client' || code === 'unsupported_grant_type';
}

/** RFC 6749 Appendix B: application/x-www-form-urlencoded, as openid-client applies it. */
function formEncode(value: string): string {
  return encodeURIComponent(value).replace(/(?:[-_.!~*'()]|%20)/g, (c) =>
    c === '%20' ? '+' : `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** Whether the two Basic encodings give different headers for these credentials. */
export function basicEncodingsDiffer(clientId: string, secret: string): boolean {
  return formEncode(clientId) !== clientId || formEncode(secret) !== secret;
}

/** `Authorization: Basic base64(client_id:secret)` with neither form-urlencoded. */
function rawClientSecretBasic(secret: string): oidc.ClientAuth {
  return (_as, client, _body, headers) => {
    headers.set('authorization', `Basic ${Buffer.from(`${client.client_id}:${secret}`).toString('base64')}`);
  };
}

/**
 * Every token-endpoint call goes through here. An error answer's `WWW-Authenticate` challenge is
 * dropped so openid-client reads the OAuth error in the JSON body (RFC 6749 §5.2 puts one on a 401
 * `invalid_client`; the body says what failed). An id_token in a 200 answer to a refresh is removed
 * before openid-client validates it: the app does not use one at refresh.
 */
async function tokenEndpointFetch(
  fetcher: (url: string | URL | Request, init?: RequestInit) => Promise<Response>,
  url: string | URL | Request,
  init: RequestInit,
): Promise<Response> {
  const response = await fetcher(url, init);
  if (response.status >= 400 && response.headers.has('www-authenticate')) {
    const headers = new Headers(response.headers);
    headers.delete('www-authenticate');
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  }
  const form =
    init.body instanceof URLSearchParams
      ? init.body
      : typeof init.body === 'string'
        ? new URLSearchParams(init.body)
        : null;
  const refresh = form?.get('grant_type') === 'refresh_token';
  if (!refresh || response.status !== 200 || !/json/i.test(response.headers.get('content-type') ?? '')) {
    return response;
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const headers = new Headers(response.headers);
  headers.delete('content-length');
  if (body && typeof body === 'object' && 'id_token' in body) {
    delete (body as Record<string, unknown>).id_token;
    return new Response(JSON.stringify(body), { status: 200, statusText: response.statusText, headers });
  }
  return new Response(text, { status: 200, statusText: response.statusText, headers });
}
