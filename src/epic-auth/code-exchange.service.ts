import { Injectable, Logger } from '@nestjs/common';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, customFetch, jwtVerify } from 'jose';

import { OutboundHttp } from 'src/outbound/outbound-http.service';
import { EpicRegistration } from 'src/organizations/organization.types';

import type { FailAttempt } from './authorization-completion';
import { EpicAuthErrorCode } from './epic-auth.errors';
import { OAuthClientService } from './oauth-client.service';
import { SmartConfiguration } from './smart-configuration';
import { describeTokenError } from './token-errors';
import { ParsedTokenResponse, parseTokenResponse } from './token-response';

/** The token response of an exchanged code, as sent and as parsed, and who the id_token names. */
export interface ExchangedCode {
  response: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
  tokens: ParsedTokenResponse;
  /** The verified id_token's `fhirUser`; null without an id_token or that claim. */
  fhirUser: string | null;
  /**
   * The verified id_token's `email` claim (OpenID Connect Core §5.1), unless `email_verified` is
   * false; null without one. Stored as a launch user's contact address (UsersService checks it).
   */
  email: string | null;
}

/** The id_token's `email` claim when it is a string not marked unverified. */
export function emailClaim(claims: Record<string, unknown>): string | null {
  if (claims.email_verified === false || typeof claims.email !== 'string') return null;
  return claims.email.trim() || null;
}

const ID_TOKEN_INVALID = 'The identity token from Epic failed verification; the connection was not saved.';

/**
 * Exchanges an authorization code at the token endpoint and verifies the id_token that comes back
 * (OpenID Connect Core §3.1.3.7), for every kind of authorization.
 */
@Injectable()
export class CodeExchangeService {
  private readonly logger = new Logger(CodeExchangeService.name);

  constructor(
    private readonly oauthClient: OAuthClientService,
    private readonly outbound: OutboundHttp,
  ) {}

  /**
   * openid-client exchanges the code (PKCE verifier, state, nonce; the id_token's issuer, audience
   * and expiry), then jose checks the id_token's signature against the discovered `jwks_uri`.
   * Failures go through `fail`.
   */
  async exchange(
    server: SmartConfiguration,
    registration: EpicRegistration,
    callback: { url: URL; codeVerifier: string; state: string; nonce: string | null; now: Date },
    fail: FailAttempt,
  ): Promise<ExchangedCode> {
    const orgId = registration.organizationId;
    const { now } = callback;
    let response: ExchangedCode['response'];
    try {
      this.logger.log({ orgId }, `Requested new access token for organization ${orgId}`);
      response = await this.oauthClient.exchangeCode(server, registration, callback.url, {
        pkceCodeVerifier: callback.codeVerifier,
        expectedState: callback.state,
        expectedNonce: callback.nonce ?? undefined,
      });
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === 'OAUTH_JWT_CLAIM_COMPARISON_FAILED' || code === 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED') {
        // openid-client checked the id_token's iss, aud, exp and nonce and one did not match.
        throw await fail(EpicAuthErrorCode.IdTokenInvalid, ID_TOKEN_INVALID, error);
      }
      throw await fail(EpicAuthErrorCode.TokenExchangeFailed, describeTokenError(error), error);
    }

    let fhirUser: string | null = null;
    let email: string | null = null;
    const idToken = response.id_token;
    if (idToken) {
      try {
        if (!server.jwksUri || !server.issuer) throw new Error('discovery gave no jwks_uri or issuer');
        // openid-client checked iss, aud, exp and nonce; the signature is checked here with jose.
        const { payload } = await jwtVerify(
          idToken,
          createRemoteJWKSet(new URL(server.jwksUri), { [customFetch]: this.outbound.fetch }),
          {
            issuer: server.issuer,
            audience: registration.clientId,
            currentDate: now,
          },
        );
        if (payload.nonce !== callback.nonce) throw new Error('nonce mismatch');
        fhirUser = typeof payload.fhirUser === 'string' ? payload.fhirUser : null;
        email = emailClaim(payload);
      } catch (error) {
        throw await fail(EpicAuthErrorCode.IdTokenInvalid, ID_TOKEN_INVALID, error);
      }
    }

    return { response, tokens: parseTokenResponse(response, now), fhirUser, email };
  }
}
