import { Injectable, Logger } from '@nestjs/common';

import { TokenAuthMethod } from 'src/organizations/organization.types';

import { EpicAuthError } from './epic-auth.errors';
import { OAuthClientService } from './oauth-client.service';
import { describeTokenError } from './token-errors';

export interface CredentialsCheckResult {
  /** False only when the server rejected the client (invalid_client): an admin must fix something. */
  ok: boolean;
  message: string;
}

/**
 * Tells an admin whether the token endpoint accepts the organization's client credentials before
 * anyone signs in (a refresh-token grant with a token that cannot exist: OAuthClientService
 * checkCredentials). With client_secret_basic on `auto`, the encoding the server takes is learned
 * here as a side effect.
 */
@Injectable()
export class CredentialsCheckService {
  private readonly logger = new Logger(CredentialsCheckService.name);

  constructor(private readonly oauthClient: OAuthClientService) {}

  /** The result in Epic's words; ConnectionTestService says them of the organization's server. */
  async check(organizationId: string): Promise<CredentialsCheckResult> {
    let client;
    try {
      client = await this.oauthClient.forOrganization(organizationId);
    } catch (error) {
      if (error instanceof EpicAuthError) return { ok: false, message: error.message };
      throw error;
    }
    const { registration } = client;
    const jwt = registration.tokenAuthMethod === TokenAuthMethod.PrivateKeyJwt;
    const result = await this.oauthClient.checkCredentials(client);
    this.logger.log(
      { orgId: organizationId, outcome: result.outcome, code: result.code },
      `Checked the client credentials of organization ${organizationId}: ${result.outcome}`,
    );
    switch (result.outcome) {
      case 'accepted': {
        const how = jwt
          ? `the client assertion signed with the service's ${registration.assertionAlg} key (so the server could use the JWK Set URL)`
          : registration.hasClientSecret
            ? 'the client ID and secret'
            : 'the client ID (a public client: no secret)';
        const encoding =
          registration.tokenAuthMethod === TokenAuthMethod.ClientSecretBasic && registration.hasClientSecret
            ? ` Basic credentials are sent ${result.encoding === 'raw' ? 'as they are (not form-urlencoded)' : 'form-urlencoded (RFC 6749 §2.3.1)'}.`
            : '';
        return {
          ok: true,
          message: `The token endpoint accepted ${how}: it answered ${result.code} to a test refresh that cannot succeed, which it does only for a client it authenticated.${encoding}`,
        };
      }
      case 'rejected':
        return {
          ok: false,
          message: jwt
            ? `The token endpoint rejected the client assertion (invalid_client): check that the client ID is right and that the JWK Set URL registered for it is this service's (shown above), and that the server has finished syncing the app (Epic: this can take hours). No one needs to sign in to check again.`
            : registration.hasClientSecret
              ? `The token endpoint rejected the client credentials (invalid_client) ${registration.tokenAuthMethod === TokenAuthMethod.ClientSecretBasic && registration.basicEncoding.fallback ? 'with both Basic encodings' : `with ${registration.tokenAuthMethod}`}: the client secret (or the client ID) is wrong, or the server has not finished syncing the app (Epic: this can take hours). Enter the secret again and test; no one needs to sign in to check.`
              : 'The token endpoint rejected the client ID (invalid_client) of this public client: check the client ID, or save the client secret if the app is confidential.',
        };
      case 'inconclusive':
        return {
          ok: true,
          message: `The client credentials could not be checked without a sign-in: ${describeTokenError(result.error)}`,
        };
    }
  }
}
