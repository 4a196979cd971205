import { createHash } from 'node:crypto';

import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import * as oidc from 'openid-client';
import { Repository } from 'typeorm';

import { AuditActor, AuditService } from 'src/audit/audit.service';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { SecretCipherService } from 'src/crypto/secret-cipher.service';
import { OrganizationsService } from 'src/organizations/organizations.service';

import { PendingAuthorization } from './entities/pending-authorization.entity';
import { EpicAuthError, EpicAuthErrorCode } from './epic-auth.errors';
import { SmartDiscoveryService } from './smart-discovery.service';

/** The callback path registered at Epic; the full URI is PUBLIC_BASE_URL + this, matched exactly. */
export const CALLBACK_PATH = '/fhir/epic-callback';
/** SMART App Launch: how long a started authorization may take (state, PKCE verifier, nonce). */
export const PENDING_TTL_MS = 10 * 60_000;
/** What an organization connection always asks for on top of its data scopes. */
export const ORGANIZATION_FLOW_SCOPES = ['openid', 'fhirUser', 'offline_access'];

export const hashState = (state: string): string => createHash('sha256').update(state).digest('hex');

/** Space-joined scopes without duplicates, flow scopes first. */
export function organizationScopes(dataScopes: string): string {
  return [...new Set([...ORGANIZATION_FLOW_SCOPES, ...dataScopes.split(' ').filter(Boolean)])].join(' ');
}

/** Starts and (next) completes SMART authorizations for an organization's Epic connection. */
@Injectable()
export class AuthorizationService {
  private readonly logger = new Logger(AuthorizationService.name);

  constructor(
    @InjectRepository(PendingAuthorization) private readonly pending: Repository<PendingAuthorization>,
    private readonly organizations: OrganizationsService,
    private readonly discovery: SmartDiscoveryService,
    private readonly cipher: SecretCipherService,
    private readonly audit: AuditService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** The exact redirect URI to register at Epic. */
  get redirectUri(): string {
    return `${this.config.publicBaseUrl}${CALLBACK_PATH}`;
  }

  /**
   * Builds the authorize URL for an admin connecting their organization: PKCE S256 always
   * (RFC 7636; SMART 2), 256-bit state stored hashed and bound to the session, nonce with
   * openid, `aud` = the FHIR base (Epic requires it with launch context since May 2023, §2).
   */
  async startOrganizationAuthorization(
    actor: AuditActor,
    sessionId: string,
    organizationId: string,
    now = new Date(),
  ): Promise<URL> {
    const registration = await this.organizations.getEpicRegistration(organizationId);
    if (!registration) {
      throw new EpicAuthError(
        EpicAuthErrorCode.NotConfigured,
        'Register the Epic client ID and FHIR base URL before connecting.',
      );
    }
    const organization = { id: registration.organizationId, name: registration.organizationName };
    let server;
    try {
      server = await this.discovery.discover(registration.fhirBaseUrl, { clientId: registration.clientId });
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

    const state = oidc.randomState();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const nonce = oidc.randomNonce();
    const scope = organizationScopes(registration.scopes);
    const stateHash = hashState(state);
    await this.pending.insert({
      stateHash,
      organizationId,
      userId: actor.id,
      sessionId,
      purpose: 'organization',
      codeVerifierEnc: this.cipher.encrypt(codeVerifier, `pending_authorization:${stateHash}:code_verifier`),
      nonce,
      redirectUri: this.redirectUri,
      createdAt: now,
      expiresAt: new Date(now.getTime() + PENDING_TTL_MS),
    });

    const url = new URL(server.authorizationEndpoint);
    const params: Record<string, string> = {
      response_type: 'code',
      client_id: registration.clientId,
      redirect_uri: this.redirectUri,
      scope,
      state,
      aud: registration.fhirBaseUrl,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      nonce,
    };
    for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
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
}
