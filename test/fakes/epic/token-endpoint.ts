import { createHash, randomUUID } from 'node:crypto';

import { generateKeyPair, SignJWT } from 'jose';

import { PKCE_VALUE } from './authorize-endpoint';
import type { ClientAuthResult } from './client-auth';
import { DSTU2_IDS, SEED } from './fhir-data';
import { isForm, NO_STORE, parseParams, type Exchange } from './http';
import { grantScopes } from './scopes';
import type { FakeEpicState, Grant, RefreshTokenRecord } from './state';
import type { FakeEpicClient } from './types';
import { subjectOf } from './users';

/**
 * The token endpoint (authorization_code, refresh_token and client_credentials grants) and the
 * RFC 7009 revocation endpoint. Client authentication lives in client-auth.ts.
 */
export class TokenEndpoint {
  constructor(private readonly state: FakeEpicState) {}

  /** An OAuth error answer (RFC 6749 §5.2), shaped as Epic sends it. */
  private oauthError(x: Exchange, error: string, reason: string): void {
    x.entry.rejection = reason;
    // Epic's invalid_client carries `"error_description": null` (docs/epic-and-smart.md §12).
    const description = error === 'invalid_client' && this.state.options.flavor === 'epic' ? null : reason;
    let status = 400;
    const headers: Record<string, string> = { ...NO_STORE };
    if (error === 'invalid_grant') status = this.state.options.invalidGrantStatus;
    if (error === 'invalid_client' && this.state.options.invalidClientStatus === 401) {
      // RFC 6749 §5.2: a 401 for a client that used the Authorization header carries a challenge.
      status = 401;
      headers['WWW-Authenticate'] = 'Basic realm="token"';
    }
    x.json(status, { error, error_description: description }, headers);
  }

  private async clientFor(
    x: Exchange,
    boundClientId: string | undefined,
    form: Record<string, string>,
  ): Promise<ClientAuthResult> {
    const tokenUrl = `${this.state.urls.origin}${x.url.pathname}`;
    const result = await this.state.auth.authenticate(x.req, form, tokenUrl);
    if (result.ok && this.state.options.endpointsByClientId && boundClientId !== result.client.clientId) {
      return {
        ok: false,
        error: 'invalid_client',
        reason: 'this client must use its own token endpoint',
        clientId: result.client.clientId,
      };
    }
    return result;
  }

  /** `/token`: checks the request, authenticates the client, then runs the grant. */
  async handle(x: Exchange, body: string, boundClientId: string | undefined): Promise<void> {
    // Epic's troubleshooting: POST, form-encoded, no JSON, no query string (docs/epic-and-smart.md §3).
    if (x.req.method !== 'POST') {
      return this.oauthError(x, 'invalid_request', 'the token endpoint takes POST only');
    }
    if (x.url.search) {
      return this.oauthError(x, 'invalid_request', 'the token endpoint takes no query string');
    }
    if (!isForm(x.req)) {
      return this.oauthError(x, 'invalid_request', 'the body must be application/x-www-form-urlencoded');
    }
    const { params: form, repeated } = parseParams(body);
    if (repeated) return this.oauthError(x, 'invalid_request', `parameter ${repeated} is repeated`);

    const auth = await this.clientFor(x, boundClientId, form);
    if (!auth.ok) {
      if (auth.clientId) x.entry.clientId = auth.clientId;
      return this.oauthError(x, auth.error, auth.reason);
    }
    const { client, method } = auth;
    x.entry.clientId = client.clientId;
    switch (form.grant_type) {
      case 'authorization_code':
        return this.codeGrant(x, client, form);
      case 'refresh_token':
        return this.refreshGrant(x, client, form);
      case 'client_credentials':
        return this.clientCredentialsGrant(x, client, method);
      case undefined:
        return this.oauthError(x, 'invalid_request', 'grant_type is missing');
      default:
        return this.oauthError(
          x,
          'unsupported_grant_type',
          `grant_type ${form.grant_type} is not supported by the fake`,
        );
    }
  }

  private async codeGrant(x: Exchange, client: FakeEpicClient, form: Record<string, string>): Promise<void> {
    if (!form.code) return this.oauthError(x, 'invalid_request', 'code is missing');
    const record = this.state.codes.get(form.code);
    if (!record) return this.oauthError(x, 'invalid_grant', 'unknown authorization code');
    if (record.grant.clientId !== client.clientId) {
      return this.oauthError(x, 'invalid_grant', 'the code was issued to another client');
    }
    if (record.used) {
      // RFC 6749 §4.1.2: a code used twice is refused, and the tokens issued from it are revoked.
      this.state.revokeGrant(record.grant.id);
      return this.oauthError(x, 'invalid_grant', 'the code was already used');
    }
    if (record.expiresAt <= this.state.now()) return this.oauthError(x, 'invalid_grant', 'the code expired');
    if (form.redirect_uri !== record.redirectUri) {
      return this.oauthError(x, 'invalid_grant', 'redirect_uri differs from the authorize request');
    }
    const verifier = form.code_verifier;
    if (record.challenge !== undefined) {
      if (verifier === undefined) return this.oauthError(x, 'invalid_grant', 'code_verifier is missing');
      if (!PKCE_VALUE.test(verifier)) {
        return this.oauthError(x, 'invalid_grant', 'code_verifier is malformed');
      }
      const computed = createHash('sha256').update(verifier).digest('base64url');
      if (computed !== record.challenge) {
        return this.oauthError(x, 'invalid_grant', 'code_verifier does not match');
      }
    } else if (verifier !== undefined) {
      // RFC 9700 §2.1.1: a code_verifier for a code issued without a challenge is refused (PKCE downgrade).
      return this.oauthError(
        x,
        'invalid_grant',
        'code_verifier sent but the authorize request had no code_challenge',
      );
    }
    record.used = true;
    x.json(200, await this.tokenResponse(client, record.grant, 'authorization_code'), NO_STORE);
  }

  private async refreshGrant(
    x: Exchange,
    client: FakeEpicClient,
    form: Record<string, string>,
  ): Promise<void> {
    if (!form.refresh_token) return this.oauthError(x, 'invalid_request', 'refresh_token is missing');
    const record = this.state.refreshTokens.get(form.refresh_token);
    // invalid_grant for a dead refresh token: RFC 6749 §5.2 (Epic's wording is unconfirmed:
    // docs/epic-and-smart.md §5).
    if (!record || record.grant.clientId !== client.clientId) {
      return this.oauthError(x, 'invalid_grant', 'unknown refresh token');
    }
    if (record.replaced && this.state.options.rollingRefreshReuse === 'revoke-grant') {
      this.state.revokeGrant(record.grant.id);
    }
    const problem = this.state.refreshTokenProblem(record);
    if (problem) return this.oauthError(x, 'invalid_grant', problem);
    x.json(200, await this.tokenResponse(client, record.grant, 'refresh_token', record), NO_STORE);
  }

  /**
   * Backend services (docs/epic-and-smart.md §9): JWT client auth, scopes from the registration, no refresh
   * token.
   */
  private async clientCredentialsGrant(x: Exchange, client: FakeEpicClient, method: string): Promise<void> {
    if (client.audience !== 'backend') {
      return this.oauthError(x, 'unauthorized_client', 'only backend clients may use client_credentials');
    }
    if (method !== 'private_key_jwt') {
      return this.oauthError(x, 'unauthorized_client', 'backend clients authenticate with a JWT');
    }
    // Epic OAuth 2.0 spec: until an org admin maps the client to an Epic user, Epic answers
    // unauthorized_client.
    if (!client.mappedToUser) {
      return this.oauthError(x, 'unauthorized_client', 'client is not mapped to an Epic user');
    }
    const grant: Grant = {
      id: randomUUID(),
      clientId: client.clientId,
      scopes: grantScopes(client.scopes, [], this.state.options),
      user: { kind: 'practitioner', practitionerId: SEED.practitioner },
      openid: false,
      fhirUserClaim: false,
    };
    x.json(200, await this.tokenResponse(client, grant, 'client_credentials'), NO_STORE);
  }

  /** `client` is the current registration: a re-registered client's changes apply to later refreshes. */
  private async tokenResponse(
    client: FakeEpicClient,
    grant: Grant,
    grantType: 'authorization_code' | 'refresh_token' | 'client_credentials',
    usedRefresh?: RefreshTokenRecord,
  ): Promise<Record<string, unknown>> {
    const lifetime = this.state.options.accessTokenLifetimeSeconds;
    const accessToken = this.state.mint('access', {
      client_id: client.clientId,
      sub: subjectOf(grant.user),
      aud: this.state.urls.fhirBase,
      exp: Math.floor((this.state.now() + lifetime * 1000) / 1000),
    });
    this.state.accessTokens.set(accessToken, {
      grantId: grant.id,
      clientId: client.clientId,
      scopes: grant.scopes,
      patient: grant.patient,
      expiresAt: this.state.now() + lifetime * 1000,
      revoked: false,
    });
    const body: Record<string, unknown> = {
      access_token: accessToken,
      token_type: this.state.options.tokenTypeCase,
      expires_in: lifetime,
      scope: grant.scopes.join(' '),
    };
    // Epic (docs/epic-and-smart.md §5): only confidential clients with persistent access get refresh
    // tokens; a refresh returns no new one unless the client uses rolling refresh tokens.
    const refreshable =
      client.type === 'confidential' && client.persistentAccess && client.refreshMode !== 'none';
    if (grantType === 'refresh_token' && usedRefresh) {
      if (client.refreshMode === 'rolling') {
        usedRefresh.replaced = true;
        // Rolling: the new refresh token inherits the first token's expiry (docs/epic-and-smart.md §5).
        body.refresh_token = this.newRefreshToken(grant, usedRefresh.expiresAt);
      }
      // Epic: the refresh response has access_token, token_type, expires_in and scope (Epic's OAuth 2.0 specification). Other
      // servers add an id_token (OpenID Connect Core §12.2), possibly one openid-client refuses.
      if (grant.openid && this.state.options.idTokenOnRefresh !== 'none') {
        body.id_token = await this.idToken(grant, this.state.options.idTokenOnRefresh === 'no-aud');
      }
      return body;
    }
    if (grantType === 'client_credentials') return body;

    if (grant.state !== undefined) body.state = grant.state;
    const epic = this.state.options.flavor === 'epic';
    if (grant.patient) {
      body.patient = grant.patient;
      // Epic: documented as epic.dstu2.patient, sent with the `__` prefix (docs/epic-and-smart.md §4).
      if (epic) body['__epic.dstu2.patient'] = DSTU2_IDS[grant.patient] ?? `T${grant.patient}`;
    }
    if (grant.ehr) {
      const { encounter, location, appointment, loginDepartment } = grant.ehr;
      Object.assign(body, { encounter, ...(epic ? { location, appointment, loginDepartment } : {}) });
      // Epic's sandbox sends need_patient_banner as the string "false"; SMART App Launch says boolean.
      body.need_patient_banner = epic ? 'false' : false;
      body.smart_style_url = `${this.state.urls.serverUrl}/api/epic/2016/EDI/HTTP/HSWebStyles.json`;
    }
    if (refreshable) {
      body.refresh_token = this.newRefreshToken(
        grant,
        this.state.now() + this.state.options.refreshTokenLifetimeSeconds * 1000,
      );
    }
    if (grant.openid) body.id_token = await this.idToken(grant);
    for (const key of Object.keys(body)) if (body[key] === undefined) delete body[key];
    return body;
  }

  private newRefreshToken(grant: Grant, expiresAt: number): string {
    const token = this.state.mint('refresh', { client_id: grant.clientId, sub: subjectOf(grant.user) });
    this.state.refreshTokens.set(token, { grant, expiresAt, revoked: false, replaced: false });
    return token;
  }

  /**
   * Epic OAuth 2.0 spec, "OpenID Connect": RS256, `iss` = `{server}/oauth2`, `aud` = client id, 5-minute
   * expiry, nonce echoed.
   */
  private async idToken(grant: Grant, withoutAudience = false): Promise<string> {
    const tamper = this.state.idTokenTamper;
    this.state.idTokenTamper = undefined;
    const now = Math.floor(Date.now() / 1000);
    // A key that is not in the JWK Set (same kid), for `tamperNextIdToken('signature')`.
    const signingKey =
      tamper === 'signature' ? (await generateKeyPair('RS256')).privateKey : this.state.keys.privateKey;
    const resourceType = grant.user.kind === 'patient' ? 'Patient' : 'Practitioner';
    const id = grant.user.kind === 'patient' ? grant.user.patientId : grant.user.practitionerId;
    const jwt = new SignJWT({
      ...(grant.nonce !== undefined
        ? { nonce: tamper === 'nonce' ? 'not-the-nonce-sent' : grant.nonce }
        : {}),
      // fhirUser only for apps that request `openid fhirUser` (Epic OAuth 2.0 spec, "OpenID Connect").
      ...(grant.fhirUserClaim ? { fhirUser: `${this.state.urls.fhirBase}/${resourceType}/${id}` } : {}),
      // OpenID Connect Core §5.1 standard claims, only with the `setIdTokenEmail` switch (we found
      // no `email` claim in Epic's OAuth 2.0 documentation).
      ...(this.state.idTokenEmail
        ? {
            email: this.state.idTokenEmail.address,
            ...(this.state.idTokenEmail.verified !== undefined
              ? { email_verified: this.state.idTokenEmail.verified }
              : {}),
          }
        : {}),
    })
      .setProtectedHeader({ alg: 'RS256', kid: this.state.keys.kid, typ: 'JWT' })
      .setIssuer(this.state.urls.issuer)
      .setSubject(subjectOf(grant.user))
      .setIssuedAt(now)
      .setExpirationTime(now + 300);
    if (!withoutAudience) jwt.setAudience(tamper === 'audience' ? 'another-client' : grant.clientId);
    return jwt.sign(signingKey);
  }

  /**
   * RFC 7009 revocation, served only with the `revocationEndpoint` switch (Epic advertises none:
   * docs/epic-and-smart.md §6).
   */
  async revoke(x: Exchange, body: string): Promise<void> {
    if (x.req.method !== 'POST' || !isForm(x.req)) {
      return this.oauthError(x, 'invalid_request', 'POST a form');
    }
    const { params: form } = parseParams(body);
    const auth = await this.state.auth.authenticate(x.req, form, this.state.urls.tokenUrl);
    if (!auth.ok) return this.oauthError(x, auth.error, auth.reason);
    x.entry.clientId = auth.client.clientId;
    const refresh = this.state.refreshTokens.get(form.token ?? '');
    if (refresh && refresh.grant.clientId === auth.client.clientId) this.state.revokeGrant(refresh.grant.id);
    const access = this.state.accessTokens.get(form.token ?? '');
    if (access && access.clientId === auth.client.clientId) access.revoked = true;
    // RFC 7009 §2.2: 200 whether or not the token was valid.
    x.text(200, '', 'text/plain');
  }
}
