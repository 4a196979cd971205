import { Inject, Injectable, Logger } from '@nestjs/common';
import * as oidc from 'openid-client';
import { DataSource } from 'typeorm';

import { AuditActor, AuditService } from 'src/audit/audit.service';
import { ClientKeysService } from 'src/client-keys/client-keys.service';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { ConnectionEvents } from 'src/connections/connections.events';
import { ConnectionsService, StoredCredential } from 'src/connections/connections.service';
import { sameFhirBase } from 'src/connections/connections.types';
import { CredentialChangedError, TokenStoreService } from 'src/connections/token-store.service';
import { ConnectionMode, EpicRegistration } from 'src/organizations/organization.types';
import { OrganizationsService } from 'src/organizations/organizations.service';

import { redirectUriFor, RegistrationInfo } from './authorization.types';
import { scopesFor } from './launch-scopes';
import { OAuthClientService } from './oauth-client.service';
import { SmartDiscoveryService } from './smart-discovery.service';

/** What became of a credential's tokens at its server when it was disconnected (audited as `revoked`). */
type Revocation = boolean | 'not-offered' | 'issuer-not-registered';

/**
 * An organization's own connection around the authorizations: what to register at Epic, whether
 * tokens are held, and disconnecting (which re-authenticating does first).
 */
@Injectable()
export class ConnectionLifecycleService {
  private readonly logger = new Logger(ConnectionLifecycleService.name);

  constructor(
    private readonly organizations: OrganizationsService,
    private readonly discovery: SmartDiscoveryService,
    private readonly oauthClient: OAuthClientService,
    private readonly tokens: TokenStoreService,
    private readonly connections: ConnectionsService,
    private readonly clientKeys: ClientKeysService,
    private readonly audit: AuditService,
    private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** The exact redirect URI to register at Epic. */
  get redirectUri(): string {
    return redirectUriFor(this.config.publicBaseUrl);
  }

  /**
   * What an admin registers at Epic, shown on the registration page to copy: the exact redirect URI,
   * the EHR launch URL, and the scopes each context asks for (docs/epic-and-smart.md §7, §8).
   */
  async registrationInfo(organizationId: string): Promise<RegistrationInfo> {
    const org = await this.organizations.get(organizationId);
    // The launch URL always names its organization: it stays right if another organization comes
    // to share the FHIR server (Epic's public sandbox is shared by every sandbox organization).
    const common = {
      connectionMode: org.connectionMode,
      redirectUri: this.redirectUri,
      ehrLaunchUrl: `${this.config.publicBaseUrl}/fhir/epic-launch?org=${encodeURIComponent(org.slug)}`,
      environment: org.epicEnvironment,
      jwksUrl: this.clientKeys.jwksUrl(org.epicEnvironment),
      tokenAuthMethod: org.tokenAuthMethod,
    };
    if (org.connectionMode === ConnectionMode.Backend) {
      return { ...common, scopes: { organization: org.epicScopes.split(' ').filter(Boolean) } };
    }
    return {
      ...common,
      scopes: {
        organization: scopesFor('organization', org.epicScopes, org.scopeSyntax),
        providerEhrLaunch: scopesFor('provider', org.epicScopes, org.scopeSyntax),
        patientStandalone: scopesFor('patient', org.epicScopes, org.scopeSyntax),
      },
    };
  }

  /**
   * Whether the organization's own tokens are stored, as the re-authenticate page mentions it
   * (re-authenticating clears them). Whether they still work is the connection's state: the status
   * JSON (ConnectionStatus) is ConnectionHealth's, from one snapshot and its state.
   */
  async status(organizationId: string): Promise<{ hasTokens: boolean }> {
    await this.organizations.get(organizationId); // 404 for an unknown organization
    return { hasTokens: (await this.tokens.findOrganizationCredential(organizationId)) !== null };
  }

  /**
   * Forgets the organization's connection: revokes the tokens where the server advertises a
   * revocation endpoint (RFC 7009; Epic advertises none: docs/epic-and-smart.md §6), then deletes
   * them. A failed revocation is logged, not fatal: the tokens are deleted either way. A caller that
   * has just read the organization's registration passes it (`loaded`), so it is not read again.
   */
  async disconnect(
    actor: AuditActor,
    organizationId: string,
    reason: 'disconnect' | 'reauthenticate',
    loaded?: { registration: EpicRegistration | null },
  ): Promise<void> {
    const registration = loaded
      ? loaded.registration
      : await this.organizations.getEpicRegistration(organizationId); // 404 for an unknown organization
    const org = registration
      ? { id: registration.organizationId, name: registration.organizationName }
      : await this.organizations.get(organizationId);
    const credential = await this.tokens.findOrganizationCredential(organizationId);
    const revoked = await this.revokeAtIssuer(credential, registration);
    const deleted = await this.dataSource.transaction(async (manager) => {
      const id = await this.connections.disconnectOrganization(organizationId, manager);
      await this.audit.record(
        {
          actor,
          organization: { id: org.id, name: org.name },
          action: reason === 'disconnect' ? 'epic.disconnect' : 'epic.tokens-cleared',
          detail: { hadTokens: credential !== null, revoked, reason },
        },
        manager,
      );
      return id;
    });
    this.connections.announce(ConnectionEvents.Disconnected, {
      id: deleted ?? credential?.id ?? '',
      organizationId,
      userId: null,
    });
  }

  /**
   * A user's Disconnect of one of their own connected accounts (a patient's "My connected
   * accounts"): revokes its tokens at the server that issued them under the same rules as
   * `disconnect` (the credential's organization's registration; RFC 7009 where offered; a failure
   * logged, not fatal), then deletes the credential (only if it is `userId`'s: callers check
   * ownership first, @OwnCredential) and audits `epic.patient-disconnect` with `revoked`.
   * `connection.disconnected` is announced for it: listeners drop cached lookups; no one is notified.
   */
  async disconnectUserCredential(actor: AuditActor, userId: string, credentialId: string): Promise<void> {
    const credential = await this.tokens.findUserCredential(userId, credentialId);
    // An ended connection holds no tokens any more (the server already refused them): nothing to revoke.
    const live = credential && !credential.endedAt ? credential : null;
    const registration = credential
      ? await this.organizations.getEpicRegistration(credential.organizationId)
      : null;
    const revoked = await this.revokeAtIssuer(live, registration);
    // The deletion and its audit entry: both or neither.
    const deleted = await this.dataSource.transaction(async (manager) => {
      const gone = await this.tokens.deleteUserCredential(userId, credentialId, manager);
      await this.audit.record(
        {
          actor,
          ...(registration
            ? { organization: { id: registration.organizationId, name: registration.organizationName } }
            : {}),
          action: 'epic.patient-disconnect',
          detail: { credential: credentialId, hadTokens: live !== null, revoked },
        },
        manager,
      );
      return gone;
    });
    if (credential && deleted) {
      this.connections.announce(ConnectionEvents.Disconnected, {
        id: credential.id,
        organizationId: credential.organizationId,
        userId,
      });
    }
  }

  /**
   * Revokes a credential's tokens at the server that issued them, where it advertises a revocation
   * endpoint (RFC 7009), refresh token first, then the access token. Only to the registered server:
   * a credential from another FHIR base is `issuer-not-registered`. A failure is logged and
   * returned as `false`, never thrown: the caller deletes the tokens either way.
   */
  private async revokeAtIssuer(
    credential: StoredCredential | null,
    registration: EpicRegistration | null,
  ): Promise<Revocation> {
    if (!credential || !registration) return 'not-offered';
    // Revocation goes only to the server that issued the tokens.
    if (!sameFhirBase(credential.fhirBaseUrl, registration.fhirBaseUrl)) return 'issuer-not-registered';
    try {
      const server = await this.discovery.discoverFor(registration);
      const config = await this.oauthClient.configuration(server, registration);
      // Offered, and on the token endpoint's origin (oauth-client.service.ts): RFC 7009.
      if (!config.serverMetadata().revocation_endpoint) return 'not-offered';
      const { accessToken, refreshToken } = await this.revealLatest(credential);
      if (refreshToken) {
        await oidc.tokenRevocation(config, refreshToken, { token_type_hint: 'refresh_token' });
      }
      await oidc.tokenRevocation(config, accessToken, { token_type_hint: 'access_token' });
      return true;
    } catch (error) {
      this.logger.warn(
        { orgId: credential.organizationId, credentialId: credential.id, err: error },
        'Token revocation failed; deleting the tokens anyway',
      );
      return false;
    }
  }

  /** The tokens of the credential as stored now (a refresh may have replaced them since it was read). */
  private async revealLatest(
    credential: StoredCredential,
  ): Promise<{ accessToken: string; refreshToken: string | null }> {
    try {
      return await this.tokens.reveal(credential);
    } catch (error) {
      if (!(error instanceof CredentialChangedError)) throw error;
      // The same credential, refreshed meanwhile; a replaced one (a reconnect) is not this server's to revoke.
      const latest = credential.userId
        ? await this.tokens.findUserCredential(credential.userId, credential.id)
        : await this.tokens.findOrganizationCredential(credential.organizationId);
      if (latest?.id !== credential.id) throw error;
      return this.tokens.reveal(latest);
    }
  }
}
