import { createHash } from 'node:crypto';

import { Inject, Injectable, Logger } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { InjectRepository } from '@nestjs/typeorm';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, customFetch, jwtVerify } from 'jose';
import { DataSource, Repository } from 'typeorm';

import { AuditActor, AuditService } from 'src/audit/audit.service';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { ConnectionEvents } from 'src/connections/connections.events';
import { ConnectionsService } from 'src/connections/connections.service';
import { CredentialGrantType } from 'src/connections/connections.types';
import { TokenStoreService } from 'src/connections/token-store.service';
import { SecretCipherService } from 'src/crypto/secret-cipher.service';
import { ClientKeysService } from 'src/client-keys/client-keys.service';
import { OutboundHttp } from 'src/outbound/outbound-http.service';
import {
  ConnectionMode,
  EpicEnvironment,
  EpicRegistration,
  speakOfServer,
  TokenAuthMethod,
} from 'src/organizations/organization.types';
import { OrganizationsService } from 'src/organizations/organizations.service';
import { Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';
import { UsersService } from 'src/users/users.service';

import { PendingAuthorization } from './entities/pending-authorization.entity';
import { EpicAuthError, EpicAuthErrorCode } from './epic-auth.errors';
import { normalizeIss } from './launch-iss';
import { scopesFor } from './launch-scopes';
import { OAuthClientService } from './oauth-client.service';
import { SmartConfiguration } from './smart-configuration';
import { SmartDiscoveryService } from './smart-discovery.service';
import { describeTokenError } from './token-errors';
import { ParsedTokenResponse, parseTokenResponse } from './token-response';

/**
 * What `/fhir/epic-status` answers. ConnectionHealth builds every field from one snapshot
 * of the connection and the state derived from it (connection-health/connection-status.ts), so no
 * field can contradict another. Token fields describe a live connection only.
 */
export interface ConnectionStatus {
  /** A client ID and FHIR base URL are registered: the state is not `not_configured`. */
  configured: boolean;
  /** A usable connection is held: the state is `connected`, `expiring` or `error`. */
  connected: boolean;
  /** The state is `expired`: it ended, or the server refused the refresh (tokens cleared). */
  expired: boolean;
  /** When the held access token ends; null unless connected. */
  expiresAt: string | null;
  /** Renewable without anyone signing in; false unless connected. */
  refreshable: boolean;
  /** The granted scopes; empty unless connected. */
  scopes: string[];
  /** The patient context of the held token; null unless connected. */
  patientId: string | null;
  lastSync: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
  /** The exact redirect URI to register at Epic. */
  callbackUrl: string;
}

/** Who an authorization completed for: the organization's connection, or a launched user. */
export type CompletedAuthorization =
  | { kind: 'organization'; organizationId: string }
  | { kind: 'provider' | 'patient'; organizationId: string; user: AuthUser; credentialId: string };

export interface RegistrationInfo {
  /** How the organization's own connection is made. A backend service uses neither URI below. */
  connectionMode: ConnectionMode;
  redirectUri: string;
  ehrLaunchUrl: string;
  /** The organization's environment: which of the service's key sets (and JWK Set URL) it uses. */
  environment: EpicEnvironment;
  /**
   * The JWK Set URL to register at Epic for private_key_jwt: the service's public keys of the
   * organization's environment (sandbox and production each have their own).
   */
  jwksUrl: string;
  /** Whether the client authenticates with private_key_jwt (register jwksUrl) or a secret. */
  tokenAuthMethod: TokenAuthMethod;
  /** Launch scopes are absent for a backend service: its client cannot sign users in. */
  scopes: { organization: string[]; providerEhrLaunch?: string[]; patientStandalone?: string[] };
}

/** The callback path registered at Epic; the full URI is PUBLIC_BASE_URL + this, matched exactly. */
export const CALLBACK_PATH = '/fhir/epic-callback';
/** SMART App Launch: how long a started authorization may take (state, PKCE verifier, nonce). */
export const PENDING_TTL_MS = 10 * 60_000;

/** No user signs in through a Backend Systems client (client_credentials only: docs/epic-and-smart.md §9). */
const BACKEND_NO_LAUNCH =
  'This organization connects to Epic as a backend service, so its Epic client cannot sign users in. Ask your administrator for a launch-enabled app.';

export const hashState = (state: string): string => createHash('sha256').update(state).digest('hex');

/** What an admin's organization connection requests (launch-scopes.ts), space-joined. */
export function organizationScopes(registration: Pick<EpicRegistration, 'scopes' | 'scopeSyntax'>): string {
  return scopesFor('organization', registration.scopes, registration.scopeSyntax).join(' ');
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
    private readonly tokens: TokenStoreService,
    private readonly connections: ConnectionsService,
    private readonly oauthClient: OAuthClientService,
    private readonly dataSource: DataSource,
    private readonly events: EventEmitter2,
    private readonly users: UsersService,
    private readonly clientKeys: ClientKeysService,
    private readonly outbound: OutboundHttp,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** The exact redirect URI to register at Epic. */
  get redirectUri(): string {
    return `${this.config.publicBaseUrl}${CALLBACK_PATH}`;
  }

  /**
   * Builds the authorize URL for an admin connecting their organization: PKCE S256 always
   * (RFC 7636; SMART 2), 256-bit state stored hashed and bound to the session, nonce with
   * openid, `aud` = the FHIR base (Epic requires it with launch context since May 2023:
   * https://fhir.epic.com/Documentation?docId=oauth2tutorial).
   */
  async startOrganizationAuthorization(
    actor: AuditActor,
    sessionId: string,
    organizationId: string,
    bindingHash: string,
    now = new Date(),
  ): Promise<URL> {
    const registration = await this.organizations.getEpicRegistration(organizationId);
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
      server = await this.discovery.discover(registration.fhirBaseUrl, {
        clientId: registration.clientId,
        authMethod: registration.tokenAuthMethod,
      });
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
    const url = await this.authorizeUrl(server, registration, {
      purpose: 'organization',
      userId: actor.id,
      sessionId,
      bindingHash,
      scope,
      now,
    });
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

  /**
   * Starts an EHR launch (docs/epic-and-smart.md §7): `iss` must be the registered FHIR base of an
   * organization (the allow-list; compared normalized, hosts exactly), and `launch` is echoed back
   * with `aud` = the organization's base and the provider scopes. The pending authorization is kept
   * server-side by state only, not bound to a browser session: an EHR may embed the app where cookies
   * are unreliable, and several launches can be in flight at once.
   */
  async startProviderLaunch(
    iss: unknown,
    launch: unknown,
    orgSlug: unknown,
    bindingHash: string,
    now = new Date(),
  ): Promise<URL> {
    const normalized = normalizeIss(iss);
    if (!normalized) {
      throw launchRefused('The launch has no valid iss (the FHIR server that launched the app).');
    }
    if (typeof launch !== 'string' || launch.length === 0 || launch.length > 4096) {
      throw launchRefused('The launch has no launch token. Start the app from Epic again.');
    }
    const candidates = await this.organizations.findByFhirBase(normalized);
    const matches =
      typeof orgSlug === 'string' && orgSlug ? candidates.filter((c) => c.slug === orgSlug) : candidates;
    if (matches.length !== 1) {
      this.logger.warn(
        { candidates: candidates.length },
        'Refused an EHR launch from an unregistered or ambiguous iss',
      );
      throw launchRefused(
        matches.length === 0
          ? 'This FHIR server is not registered with this service. Ask your administrator to register it.'
          : 'Several organizations use this FHIR server: the launch URL registered at Epic must name one (?org=<slug>).',
      );
    }
    const registration = (await this.organizations.getEpicRegistration(matches[0].id))!;
    if (registration.connectionMode === ConnectionMode.Backend) throw launchRefused(BACKEND_NO_LAUNCH);
    const server = await this.discovery.discover(registration.fhirBaseUrl, {
      clientId: registration.clientId,
      authMethod: registration.tokenAuthMethod,
    });
    const scope = scopesFor('provider', registration.scopes, registration.scopeSyntax).join(' ');
    const url = await this.authorizeUrl(server, registration, {
      purpose: 'provider',
      userId: null,
      sessionId: '',
      bindingHash,
      scope,
      now,
      launch,
    });
    await this.audit.record({
      actor: null,
      organization: { id: registration.organizationId, name: registration.organizationName },
      action: 'epic.launch',
      detail: { stage: 'redirected', context: 'provider', scope },
    });
    this.logger.log({ orgId: registration.organizationId }, 'EHR launch: redirecting the provider to Epic');
    return url;
  }

  /**
   * "Connect my Epic account" (standalone patient launch, docs/epic-and-smart.md §8) for the
   * organization with this slug: patient scopes, no `launch`, `aud` = the base. A signed-in patient of
   * that organization links the credential to their account (the authorization is then bound to their
   * session); anyone else signs in this way as the patient the verified id_token names.
   */
  async startPatientLaunch(
    orgSlug: unknown,
    user: AuthUser | null,
    sessionId: string,
    bindingHash: string,
    now = new Date(),
  ): Promise<URL> {
    const org =
      typeof orgSlug === 'string' && /^[a-z0-9-]{1,100}$/.test(orgSlug)
        ? await this.organizations.findBySlug(orgSlug)
        : null;
    const registration = org ? await this.organizations.getEpicRegistration(org.id) : null;
    if (!org || !registration) {
      throw launchRefused(
        'This organization is unknown or not connected to Epic: check the link you followed.',
      );
    }
    if (registration.connectionMode === ConnectionMode.Backend) throw launchRefused(BACKEND_NO_LAUNCH);
    const linking = user?.role === Role.Patient && user.organizationId === org.id;
    const server = await this.discovery.discover(registration.fhirBaseUrl, {
      clientId: registration.clientId,
      authMethod: registration.tokenAuthMethod,
    });
    const scope = scopesFor('patient', registration.scopes, registration.scopeSyntax).join(' ');
    const url = await this.authorizeUrl(server, registration, {
      purpose: 'patient',
      userId: linking ? user.id : null,
      sessionId: linking ? sessionId : '',
      bindingHash,
      scope,
      now,
    });
    await this.audit.record({
      actor: linking ? user : null,
      organization: { id: org.id, name: org.name },
      action: 'epic.launch',
      detail: { stage: 'redirected', context: 'patient', linking, scope },
    });
    return url;
  }

  /** Stores the pending authorization (state hashed, PKCE verifier encrypted) and builds the URL. */
  private async authorizeUrl(
    server: SmartConfiguration,
    registration: EpicRegistration,
    input: {
      purpose: 'organization' | 'provider' | 'patient';
      userId: string | null;
      sessionId: string;
      bindingHash: string;
      scope: string;
      now: Date;
      launch?: string;
    },
  ): Promise<URL> {
    const { now } = input;
    // Sweep abandoned authorizations (kept a day past expiry for the audit of late callbacks).
    await this.pending.query(`DELETE FROM pending_authorization WHERE expires_at < $1`, [
      new Date(now.getTime() - 24 * 3600_000),
    ]);
    const state = oidc.randomState();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const nonce = oidc.randomNonce();
    const stateHash = hashState(state);
    await this.pending.insert({
      stateHash,
      organizationId: registration.organizationId,
      userId: input.userId,
      sessionId: input.sessionId,
      browserBindingHash: input.bindingHash,
      purpose: input.purpose,
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
      scope: input.scope,
      state,
      aud: registration.fhirBaseUrl,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      nonce,
      ...(input.launch ? { launch: input.launch } : {}),
    };
    for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
    return url;
  }

  /**
   * Completes an authorization at the callback. The state must be known, unused, unexpired and
   * from this session (consumed atomically, so a replay finds nothing). Then the code is exchanged
   * (PKCE verifier, client_secret_basic, timeout), the id_token verified, and the credential and
   * connection state written in one transaction. Every failure records an actionable lastError.
   * Returns the organization id.
   */
  async completeAuthorization(
    sessionId: string,
    query: Record<string, unknown>,
    bindingHash: string,
    now = new Date(),
  ): Promise<CompletedAuthorization> {
    const state = typeof query.state === 'string' ? query.state : '';
    if (!state) throw invalidState('The response from Epic has no state. Start the connection again.');
    // Consumed only by the browser that started it: a callback URL carried to another browser
    // (sign-in CSRF) leaves the state unspent and changes no session.
    const [rows] = await this.pending.query<[PendingAuthorization[], number]>(
      `UPDATE pending_authorization SET used_at = $2
        WHERE state_hash = $1 AND used_at IS NULL AND browser_binding_hash = $3
       RETURNING organization_id AS "organizationId", user_id AS "userId", session_id AS "sessionId",
                 code_verifier_enc AS "codeVerifierEnc", nonce, redirect_uri AS "redirectUri",
                 expires_at AS "expiresAt", state_hash AS "stateHash", purpose`,
      [hashState(state), now, bindingHash],
    );
    const pending = rows[0];
    if (!pending) {
      const [other] = await this.pending.query<{ purpose: string; organizationId: string }[]>(
        `SELECT purpose, organization_id AS "organizationId" FROM pending_authorization
          WHERE state_hash = $1 AND used_at IS NULL`,
        [hashState(state)],
      );
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

    const fail = async (code: EpicAuthErrorCode, message: string, cause?: unknown, detail: object = {}) => {
      // A failed attempt changes nothing about the stored connection: a declined or broken reconnect
      // must not mark a working connection as failed. The attempt is audited, and the person who
      // tried sees the message (the error page).
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
      server = await this.discovery.discover(registration.fhirBaseUrl, {
        clientId: registration.clientId,
        authMethod: registration.tokenAuthMethod,
      });
    } catch (error) {
      throw await fail(EpicAuthErrorCode.DiscoveryFailed, (error as Error).message, error);
    }

    const codeVerifier = this.cipher.decrypt(
      pending.codeVerifierEnc,
      `pending_authorization:${pending.stateHash}:code_verifier`,
    );
    // The callback URL as registered (PUBLIC_BASE_URL), with the query Epic sent: never the Host header.
    const currentUrl = new URL(pending.redirectUri);
    for (const [key, value] of Object.entries(query)) {
      if (typeof value === 'string') currentUrl.searchParams.set(key, value);
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

    let response: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      this.logger.log({ orgId }, `Requested new access token for organization ${orgId}`);
      response = await this.oauthClient.exchangeCode(server, registration, currentUrl, {
        pkceCodeVerifier: codeVerifier,
        expectedState: state,
        expectedNonce: pending.nonce ?? undefined,
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
        if (payload.nonce !== pending.nonce) throw new Error('nonce mismatch');
        fhirUser = typeof payload.fhirUser === 'string' ? payload.fhirUser : null;
      } catch (error) {
        throw await fail(EpicAuthErrorCode.IdTokenInvalid, ID_TOKEN_INVALID, error);
      }
    }

    const tokens = parseTokenResponse(response, now);
    if (pending.purpose === 'provider') {
      if (!fhirUser || !/(^|\/)Practitioner\/[^/]+$/.test(fhirUser)) {
        throw await fail(
          EpicAuthErrorCode.IdTokenInvalid,
          'Epic did not identify a clinician (the id_token has no Practitioner fhirUser); the launch cannot continue.',
        );
      }
      const launched = await this.dataSource.transaction(async (manager) => {
        const user = await this.users.findOrCreateLaunchUser(manager, orgId, Role.Provider, fhirUser);
        const stored = await this.connections.connectUser(manager, {
          organizationId: orgId,
          userId: user.id,
          purpose: 'provider',
          fhirBaseUrl: registration.fhirBaseUrl,
          tokens,
          fhirUser,
          needPatientBanner: readBoolean(response.need_patient_banner),
          smartStyleUrl:
            typeof response.smart_style_url === 'string' ? response.smart_style_url.slice(0, 2048) : null,
        });
        await this.audit.record(
          {
            actor: user,
            organization,
            action: 'epic.launch',
            detail: {
              stage: 'completed',
              context: 'provider',
              patient: tokens.patientId,
              encounter: tokens.encounterId,
            },
          },
          manager,
        );
        return { user, credentialId: stored.id };
      });
      this.logger.log({ orgId, userId: launched.user.id }, `EHR launch completed for organization ${orgId}`);
      return { kind: 'provider', organizationId: orgId, ...launched };
    }
    if (pending.purpose === 'patient') {
      if (!fhirUser || !/(^|\/)Patient\/[^/]+$/.test(fhirUser)) {
        throw await fail(
          EpicAuthErrorCode.IdTokenInvalid,
          'Epic did not identify a patient (the id_token has no Patient fhirUser); the account was not connected.',
        );
      }
      // Epic sends `patient` to patient-facing apps; a SMART server sends it only for `launch/patient`.
      // Either way the verified fhirUser names the patient who signed in.
      const patientTokens: ParsedTokenResponse = {
        ...tokens,
        patientId: tokens.patientId ?? /(?:^|\/)Patient\/([^/]+)$/.exec(fhirUser)![1],
      };
      const linked = await this.dataSource.transaction(async (manager) => {
        const user = pending.userId
          ? await this.users.linkLaunchUser(manager, pending.userId, orgId, fhirUser)
          : await this.users.findOrCreateLaunchUser(manager, orgId, Role.Patient, fhirUser);
        const stored = await this.connections.connectUser(manager, {
          organizationId: orgId,
          userId: user.id,
          purpose: 'patient',
          fhirBaseUrl: registration.fhirBaseUrl,
          tokens: patientTokens,
          fhirUser,
          needPatientBanner: null,
          smartStyleUrl: null,
        });
        await this.audit.record(
          {
            actor: user,
            organization,
            action: 'epic.launch',
            detail: { stage: 'completed', context: 'patient', refreshable: tokens.refreshToken !== null },
          },
          manager,
        );
        return { user, credentialId: stored.id };
      });
      this.logger.log(
        { orgId, userId: linked.user.id },
        `Patient connected an Epic account at organization ${orgId}`,
      );
      return { kind: 'patient', organizationId: orgId, ...linked };
    }
    await this.storeOrganizationConnection({
      actor,
      organization: { ...organization, fhirBaseUrl: registration.fhirBaseUrl },
      tokens,
      fhirUser,
      grantType: 'authorization_code',
    });
    return { kind: 'organization', organizationId: orgId };
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
   * them. A failed revocation is logged, not fatal: the tokens are deleted either way.
   */
  async disconnect(
    actor: AuditActor,
    organizationId: string,
    reason: 'disconnect' | 'reauthenticate',
  ): Promise<void> {
    const org = await this.organizations.get(organizationId);
    const credential = await this.tokens.findOrganizationCredential(organizationId);
    let revoked: boolean | 'not-offered' = 'not-offered';
    const registration = await this.organizations.getEpicRegistration(organizationId);
    if (credential && registration) {
      try {
        const server = await this.discovery.discover(registration.fhirBaseUrl, {
          clientId: registration.clientId,
          authMethod: registration.tokenAuthMethod,
        });
        const config = await this.oauthClient.configuration(server, registration);
        // Offered, and on the token endpoint's origin (oauth-client.service.ts): RFC 7009.
        if (config.serverMetadata().revocation_endpoint) {
          const { accessToken, refreshToken } = await this.tokens.reveal(credential);
          if (refreshToken) {
            await oidc.tokenRevocation(config, refreshToken, { token_type_hint: 'refresh_token' });
          }
          await oidc.tokenRevocation(config, accessToken, { token_type_hint: 'access_token' });
          revoked = true;
        }
      } catch (error) {
        revoked = false;
        this.logger.warn(
          { orgId: organizationId, err: error },
          'Token revocation failed; deleting the tokens anyway',
        );
      }
    }
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

  private async actorLabel(userId: string): Promise<string> {
    return (await this.users.emailOf(userId)) ?? 'unknown';
  }
}

/** A callback in a browser that did not start the authorization (browser-binding.ts). */
const ANOTHER_BROWSER =
  'This sign-in was started in another browser, or this browser blocked its cookie, so it was not completed and nobody was signed in here. If someone sent you this link, ignore it.';
const START_AGAIN: Record<string, string> = {
  organization: 'To connect the organization, use Connect on its registration page in this browser.',
  provider: 'To open the app, launch it again from inside the EHR.',
  patient: 'To connect your account, start again from the "Connect my account" link of your organization.',
};

const ID_TOKEN_INVALID = 'The identity token from Epic failed verification; the connection was not saved.';

function invalidState(message: string, organizationId?: string): EpicAuthError {
  return new EpicAuthError(EpicAuthErrorCode.InvalidState, message, { organizationId });
}

function launchRefused(message: string): EpicAuthError {
  return new EpicAuthError(EpicAuthErrorCode.LaunchRefused, message);
}

/**
 * Epic sends need_patient_banner as "true"/"false" strings (Epic OAuth 2.0 tutorial, "Retrieving Launch
 * Context": https://fhir.epic.com/Documentation?docId=oauth2tutorial); SMART says boolean.
 */
function readBoolean(value: unknown): boolean | null {
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  return null;
}
