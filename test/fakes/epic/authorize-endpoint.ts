import { randomUUID } from 'node:crypto';

import { isForm, parseParams, withParams, type Exchange } from './http';
import { consentPage, errorPage } from './pages';
import { grantScopes, splitScope } from './scopes';
import type { FakeEpicState, Grant, LaunchRecord, ValidAuthorizeRequest } from './state';
import type { FakeEpicAuthorizeResult, FakeEpicClient, FakeEpicConsent, FakeEpicUser } from './types';
import { defaultUser, parseUserKey, userKey } from './users';

/** Test-only request headers `authorizeAsUser` uses to pick the user and the consent answer. */
const USER_HEADER = 'x-fake-epic-user';
const CONSENT_HEADER = 'x-fake-epic-consent';
const AUTO_HEADER = 'x-fake-epic-auto';

/** RFC 7636 §4.1/§4.2: verifiers and S256 challenges are 43-128 unreserved characters. */
export const PKCE_VALUE = /^[A-Za-z0-9\-._~]{43,128}$/;

type AuthorizeOutcome =
  | { kind: 'page'; reason: string; clientId?: string }
  | {
      kind: 'redirect-error';
      redirectUri: string;
      error: string;
      reason: string;
      state?: string;
      clientId: string;
    }
  | { kind: 'ok'; request: ValidAuthorizeRequest };

/**
 * The authorize endpoint: checks the request, logs the user in (the configured user, the test-only
 * headers, or the consent page), and redirects back with a code or an error.
 */
export class AuthorizeEndpoint {
  constructor(private readonly state: FakeEpicState) {}

  /** `/authorize`: GET, or POST with a form (EHR launches only). */
  handle(x: Exchange, body: string, boundClientId: string | undefined): void {
    const method = x.req.method ?? 'GET';
    if (method !== 'GET' && method !== 'POST') {
      return this.authorizeError(x, { kind: 'page', reason: `${method} not allowed` });
    }
    if (method === 'POST' && !isForm(x.req)) {
      // Epic's troubleshooting: a POST with a JSON body fails (docs/epic-and-smart.md §12).
      return this.authorizeError(x, { kind: 'page', reason: 'POST /authorize needs a form-encoded body' });
    }
    const { params, repeated } = parseParams(method === 'POST' ? body : x.url.search);
    x.entry.clientId = params.client_id;
    const outcome = this.validateAuthorize(params, repeated, method, boundClientId);
    if (outcome.kind !== 'ok') return this.authorizeError(x, outcome);
    const request = outcome.request;

    if (this.state.options.consentPage && x.req.headers[AUTO_HEADER] === undefined) {
      const requestId = randomUUID();
      this.state.pendingConsents.set(requestId, request);
      const users = request.launch
        ? [
            {
              value: userKey({ kind: 'practitioner', practitionerId: request.launch.context.practitioner }),
              label: 'Clinician from the EHR launch',
            },
          ]
        : this.loginChoices(request.client);
      const action = `${x.url.pathname}/decision`;
      return x.text(
        200,
        consentPage({
          action,
          requestId,
          clientId: request.client.clientId,
          scopes: request.requested,
          users,
        }),
        'text/html;charset=utf-8',
      );
    }
    const consent =
      x.req.headers[CONSENT_HEADER] === 'deny'
        ? 'deny'
        : x.req.headers[CONSENT_HEADER] === 'approve'
          ? 'approve'
          : this.state.consent;
    const chosen = parseUserKey(x.req.headers[USER_HEADER]);
    this.completeAuthorize(x, request, chosen, consent);
  }

  /** `/authorize/decision`: the consent page's answer. */
  consentDecision(x: Exchange, boundClientId: string | undefined): void {
    const params = x.entry.form ?? {};
    const request = this.state.pendingConsents.get(params.request ?? '');
    if (!request || x.req.method !== 'POST') {
      return this.authorizeError(x, { kind: 'page', reason: 'unknown or answered consent request' });
    }
    this.state.pendingConsents.delete(params.request);
    if (boundClientId !== undefined && boundClientId !== request.client.clientId) {
      return this.authorizeError(x, { kind: 'page', reason: 'consent answered at another client endpoint' });
    }
    x.entry.clientId = request.client.clientId;
    this.completeAuthorize(
      x,
      request,
      parseUserKey(params.user),
      params.decision === 'approve' ? 'approve' : 'deny',
    );
  }

  private loginChoices(client: FakeEpicClient): Array<{ value: string; label: string }> {
    const kind = client.audience === 'patient' ? 'Patient' : 'Practitioner';
    return this.state.store.all(kind).map((r) => {
      const name = (r.name as Array<{ text?: string }> | undefined)?.[0]?.text ?? r.id;
      const user: FakeEpicUser =
        kind === 'Patient'
          ? { kind: 'patient', patientId: r.id }
          : { kind: 'practitioner', practitionerId: r.id };
      return { value: userKey(user), label: `${name} (${kind} ${r.id})` };
    });
  }

  /**
   * RFC 6749 §4.1.2.1: errors about the client or the redirect URI are shown to the user (no redirect);
   * every later error goes back to the redirect URI with `error`, `error_description` and `state`.
   */
  private validateAuthorize(
    params: Record<string, string>,
    repeated: string | undefined,
    method: string,
    boundClientId: string | undefined,
  ): AuthorizeOutcome {
    const clientId = params.client_id;
    if (!clientId) return { kind: 'page', reason: 'client_id is missing' };
    const client = this.state.clients.get(clientId);
    if (!client) return { kind: 'page', reason: `unknown client_id ${clientId}`, clientId };
    if (this.state.options.endpointsByClientId && boundClientId !== clientId) {
      return {
        kind: 'page',
        reason: 'this client must use its own authorize endpoint (Epic-Client-ID)',
        clientId,
      };
    }
    const redirectUri = params.redirect_uri;
    if (!redirectUri) return { kind: 'page', reason: 'redirect_uri is missing', clientId };
    // Epic: exact, case-sensitive match against a registered URI (Epic OAuth 2.0 spec; RFC 9700 §2.1).
    if (!client.redirectUris.includes(redirectUri)) {
      return {
        kind: 'page',
        reason: `redirect_uri ${redirectUri} is not registered for this client`,
        clientId,
      };
    }
    const state = params.state;
    const fail = (error: string, reason: string): AuthorizeOutcome => ({
      kind: 'redirect-error',
      redirectUri,
      error,
      reason,
      state,
      clientId,
    });
    if (repeated) return fail('invalid_request', `parameter ${repeated} is repeated`);
    if (client.audience === 'backend') {
      return fail('unauthorized_client', 'backend clients cannot use authorize');
    }
    if (params.response_type !== 'code') {
      return fail(
        'unsupported_response_type',
        `response_type must be code, not ${params.response_type ?? 'missing'}`,
      );
    }
    // Epic: POST /authorize works for EHR launches only (docs/epic-and-smart.md §2).
    if (method === 'POST' && !params.launch) {
      return fail('invalid_request', 'POST /authorize is for EHR launches only');
    }
    const requested = splitScope(params.scope);
    // Epic: scope is optional for standalone, but the sandbox requires it (docs/epic-and-smart.md §2).
    if (requested.length === 0 && this.state.options.requireScope) {
      return fail('invalid_scope', 'scope is required');
    }

    // Epic OAuth 2.0 spec: PKCE is optional at Epic, S256 only; `plain` is not supported (Aug 2019+).
    const challenge = params.code_challenge;
    const challengeMethod = params.code_challenge_method;
    if (challengeMethod !== undefined && challengeMethod !== 'S256') {
      return fail('invalid_request', `code_challenge_method ${challengeMethod} is not supported`);
    }
    if (challenge !== undefined) {
      // RFC 7636 §4.3: no method means `plain`, which Epic does not support.
      if (challengeMethod === undefined) {
        return fail('invalid_request', 'code_challenge_method missing (plain is not supported)');
      }
      if (!PKCE_VALUE.test(challenge)) return fail('invalid_request', 'code_challenge is malformed');
    } else if (challengeMethod !== undefined) {
      return fail('invalid_request', 'code_challenge_method without code_challenge');
    } else if (this.state.options.requirePkce) {
      return fail('invalid_request', 'PKCE (code_challenge) is required');
    }

    // Epic OAuth 2.0 tutorial: aud is the FHIR base; required from May 2023 when launch context is requested.
    const wantsContext =
      params.launch !== undefined || requested.some((s) => s === 'launch' || s.startsWith('launch/'));
    const audRequired =
      this.state.options.audRequired === 'always' ||
      (this.state.options.audRequired === 'launch-context' && wantsContext);
    if (params.aud === undefined && audRequired) return fail('invalid_request', 'aud is required');
    if (params.aud !== undefined && params.aud !== this.state.urls.fhirBase) {
      return fail(
        'invalid_request',
        `aud ${params.aud} is not this FHIR server (${this.state.urls.fhirBase})`,
      );
    }

    let launch: LaunchRecord | undefined;
    if (params.launch !== undefined) {
      // A one-time launch token from this server, else invalid_launch_token (docs/epic-and-smart.md §7).
      launch = this.state.launches.get(params.launch);
      if (!launch) return fail('invalid_request', 'invalid_launch_token: unknown launch token');
      if (launch.used) return fail('invalid_request', 'invalid_launch_token: launch token already used');
      if (launch.expiresAt <= this.state.now()) {
        return fail('invalid_request', 'invalid_launch_token: launch token expired');
      }
      if (launch.context.clientId !== undefined && launch.context.clientId !== clientId) {
        return fail('invalid_request', 'invalid_launch_token: launch token was issued for another client');
      }
      launch.used = true;
    } else if (requested.includes('launch')) {
      // Epic OAuth 2.0 tutorial: do not add `launch` to a standalone request.
      return fail('invalid_scope', 'the launch scope needs a launch parameter (EHR launch)');
    }
    return {
      kind: 'ok',
      request: { client, redirectUri, state, requested, challenge, nonce: params.nonce, launch },
    };
  }

  private authorizeError(x: Exchange, outcome: Exclude<AuthorizeOutcome, { kind: 'ok' }>): void {
    x.entry.rejection = outcome.reason;
    if (outcome.clientId) x.entry.clientId = outcome.clientId;
    if (outcome.kind === 'page') return x.text(400, errorPage(outcome.reason), 'text/html;charset=utf-8');
    x.redirect(
      withParams(outcome.redirectUri, {
        error: outcome.error,
        error_description: outcome.reason,
        state: outcome.state,
      }),
    );
  }

  private completeAuthorize(
    x: Exchange,
    request: ValidAuthorizeRequest,
    chosenUser: FakeEpicUser | undefined,
    consent: FakeEpicConsent,
  ): void {
    const { client, redirectUri, state, requested, launch } = request;
    const deny = (reason: string) =>
      this.authorizeError(x, {
        kind: 'redirect-error',
        redirectUri,
        error: 'access_denied',
        reason,
        state,
        clientId: client.clientId,
      });
    if (consent === 'deny') return deny('the user denied access');
    // Epic OAuth 2.0 tutorial: with the `launch` scope the EHR session's clinician is the user, and the
    // launch context applies; without it the user logs in again and no context is returned.
    const ehr = launch && requested.includes('launch') ? launch.context : undefined;
    const user: FakeEpicUser = ehr
      ? { kind: 'practitioner', practitionerId: ehr.practitioner }
      : (chosenUser ?? this.state.user ?? defaultUser(client));
    if ((client.audience === 'patient') !== (user.kind === 'patient') && !ehr) {
      return deny(`a ${user.kind} cannot log in to a ${client.audience} app`);
    }
    const grant: Grant = {
      id: randomUUID(),
      clientId: client.clientId,
      scopes: grantScopes(client.scopes, requested, this.state.options),
      user,
      // Epic: standalone launches return `patient` in patient-facing workflows (Epic's OAuth 2.0
      // specification); the SMART spec: only when the app asked for `launch/patient`.
      patient: ehr
        ? ehr.patient
        : user.kind === 'patient' &&
            (this.state.options.patientContext === 'patient-apps' || requested.includes('launch/patient'))
          ? user.patientId
          : undefined,
      ehr,
      nonce: request.nonce,
      state,
      openid: requested.includes('openid'),
      fhirUserClaim: requested.includes('fhirUser'),
    };
    const code = this.state.mint('code', { client_id: client.clientId });
    this.state.codes.set(code, {
      grant,
      redirectUri,
      challenge: request.challenge,
      expiresAt: this.state.now() + this.state.options.codeLifetimeSeconds * 1000,
      used: false,
    });
    // Epic OAuth 2.0 spec: the redirect carries only code and state (no RFC 9207 iss).
    x.redirect(withParams(redirectUri, { code, state }));
  }
}

/** The browser side of `FakeEpic.authorizeAsUser`: sends the test-only headers the endpoint reads. */
export async function playBrowserAtAuthorize(
  url: string | URL,
  options: { method?: 'GET' | 'POST'; user?: FakeEpicUser; consent?: FakeEpicConsent },
): Promise<FakeEpicAuthorizeResult> {
  const target = new URL(url);
  const headers: Record<string, string> = { [AUTO_HEADER]: '1' };
  if (options.user) headers[USER_HEADER] = userKey(options.user);
  if (options.consent) headers[CONSENT_HEADER] = options.consent;
  let res: Response;
  if (options.method === 'POST') {
    const body = target.searchParams.toString();
    target.search = '';
    headers['content-type'] = 'application/x-www-form-urlencoded';
    res = await fetch(target, { method: 'POST', body, headers, redirect: 'manual' });
  } else {
    res = await fetch(target, { headers, redirect: 'manual' });
  }
  const body = await res.text();
  const location = res.headers.get('location') ?? undefined;
  const result: FakeEpicAuthorizeResult = { status: res.status, body, location };
  if (location) {
    const params = new URL(location).searchParams;
    result.code = params.get('code') ?? undefined;
    result.state = params.get('state') ?? undefined;
    result.error = params.get('error') ?? undefined;
    result.errorDescription = params.get('error_description') ?? undefined;
  }
  return result;
}
