import type { IncomingMessage, Server, ServerResponse } from 'node:http';

import { AuthorizeEndpoint } from './authorize-endpoint';
import { BULK_FILES_PATH } from './bulk-data';
import { advertisedEndpoints, openidConfiguration, smartConfiguration } from './discovery';
import { FhirEndpoint } from './fhir-endpoint';
import { accepts, Exchange, isForm, NO_STORE, parseParams, readBody } from './http';
import { ehrLaunchEndpoint } from './launch';
import type { FakeEpicState } from './state';
import { TokenEndpoint } from './token-endpoint';
import type { FakeEpicEndpoint, FakeEpicFault, FakeEpicRequest } from './types';
import { CLIENT_ENDPOINTS_PATH, EHR_LAUNCH_PATH } from './urls';

/** The FHIR API's endpoints: the ones whose answers FakeEpic.compressAnswers compresses. */
const COMPRESSIBLE = new Set<FakeEpicEndpoint>(['fhir', 'metadata', 'bulk-files']);

interface Route {
  endpoint: FakeEpicEndpoint;
  /** Set on per-client endpoints (`endpointsByClientId`). */
  boundClientId?: string;
  /** `/authorize/decision` (consent page answer). */
  decision?: boolean;
}

/**
 * Answers every request of a fake: routes it to an endpoint, logs it, and applies the first armed
 * fault that matches it.
 */
export class Router {
  private readonly authorize: AuthorizeEndpoint;
  private readonly token: TokenEndpoint;
  private readonly fhir: FhirEndpoint;
  /** Wakes the requests a `delayMs` fault holds. */
  private readonly sleepers = new Set<() => void>();
  private closed = false;

  constructor(private readonly state: FakeEpicState) {
    this.authorize = new AuthorizeEndpoint(state);
    this.token = new TokenEndpoint(state);
    this.fhir = new FhirEndpoint(state);
  }

  /** Serves `server`'s requests; an unexpected error is a 500. */
  listen(server: Server): void {
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent && !res.destroyed) {
          res.writeHead(500, { 'Content-Type': 'text/plain' });
          res.end(`fake Epic error: ${(err as Error).message}`);
        }
      });
    });
  }

  /** Ends the delays of `delayMs` faults; the delayed requests then go unanswered. */
  close(): void {
    this.closed = true;
    for (const wake of this.sleepers) wake();
  }

  /** The route table: which endpoint a path is, given the path layout and the switches. */
  private route(path: string): Route {
    const { oauthPath, fhirPath, jwksPath } = this.state.urls;
    const { options } = this.state;
    if (path === `${oauthPath}/authorize`) return { endpoint: 'authorize' };
    if (path === `${oauthPath}/authorize/decision`) return { endpoint: 'authorize', decision: true };
    if (path === `${oauthPath}/token`) return { endpoint: 'token' };
    if (path === `${oauthPath}/revoke` && options.revocationEndpoint) return { endpoint: 'revoke' };
    if (path === `${oauthPath}/.well-known/openid-configuration`) {
      return { endpoint: 'openid-configuration' };
    }
    if (path === `${fhirPath}/.well-known/openid-configuration`) {
      return { endpoint: 'openid-configuration' };
    }
    if (path === `${fhirPath}/.well-known/smart-configuration`) {
      return { endpoint: 'smart-configuration' };
    }
    if (path === `${fhirPath}/metadata`) return { endpoint: 'metadata' };
    if (path === jwksPath) return { endpoint: 'jwks' };
    if (path === fhirPath || path.startsWith(`${fhirPath}/`)) return { endpoint: 'fhir' };
    if (path === EHR_LAUNCH_PATH && options.ehrLaunchEndpoint) return { endpoint: 'ehr-launch' };
    if (path.startsWith(`${BULK_FILES_PATH}/`)) return { endpoint: 'bulk-files' };
    if (options.endpointsByClientId && path.startsWith(CLIENT_ENDPOINTS_PATH)) {
      const match = /^([^/]+)\/(authorize|authorize\/decision|token)$/.exec(
        path.slice(CLIENT_ENDPOINTS_PATH.length),
      );
      if (match) {
        const boundClientId = decodeURIComponent(match[1]);
        if (match[2] === 'token') return { endpoint: 'token', boundClientId };
        return { endpoint: 'authorize', boundClientId, decision: match[2] === 'authorize/decision' };
      }
    }
    return { endpoint: 'other' };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.state.urls.origin);
    const route = this.route(url.pathname);
    const entry: FakeEpicRequest = {
      seq: this.state.log.length + 1,
      at: this.state.now(),
      endpoint: route.endpoint,
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      query: Object.fromEntries(url.searchParams),
      headers: { ...req.headers },
    };
    this.state.log.push(entry);
    const body = await readBody(req);
    const form = isForm(req) ? parseParams(body).params : undefined;
    if (form) {
      entry.form = form;
      entry.grantType = form.grant_type;
    }
    entry.clientId = form?.client_id ?? url.searchParams.get('client_id') ?? undefined;
    const x = new Exchange(req, res, url, entry);
    const coding = this.state.answerCoding;
    if (coding && COMPRESSIBLE.has(entry.endpoint) && accepts(req, coding)) x.coding = coding;

    const latency = this.state.fhirLatencyMs;
    if (entry.endpoint === 'fhir' && latency.max > 0) {
      entry.latencyMs = latency.min + latency.draw() * (latency.max - latency.min);
      await this.sleep(entry.latencyMs);
      if (this.closed) return;
    }
    const fault = this.takeFault(entry);
    if (fault) {
      entry.fault = fault;
      if (!(await this.applyFault(x, fault))) return;
    }
    await this.dispatch(x, route, body);
    // `thenReset`: what was sent (headers, first bytes) has left; the connection is then cut.
    if (fault && 'stallBody' in fault && fault.thenReset) setTimeout(() => x.drop(), 50);
  }

  private takeFault(entry: FakeEpicRequest): FakeEpicFault | undefined {
    const armed = this.state.faults.find(
      (f) => f.endpoint === entry.endpoint && (f.grantType === undefined || f.grantType === entry.grantType),
    );
    if (!armed) return undefined;
    armed.remaining -= 1;
    if (armed.remaining <= 0) this.state.faults.splice(this.state.faults.indexOf(armed), 1);
    return armed.fault;
  }

  /** Applies a fault. Returns true when the request should still be processed. */
  private async applyFault(x: Exchange, fault: FakeEpicFault): Promise<boolean> {
    if ('delayMs' in fault) {
      await this.sleep(fault.delayMs);
      return !this.closed;
    }
    if ('drop' in fault) {
      if (fault.drop === 'after-processing') {
        x.dropResponse = true;
        return true;
      }
      x.drop();
      return false;
    }
    if ('stallBody' in fault) {
      x.stallAfterBytes = fault.afterBytes ?? 'half';
      return true;
    }
    if ('malformedJson' in fault) {
      x.text(200, '{"access_token":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOi', 'application/json;charset=utf-8');
      return false;
    }
    if ('oauthError' in fault) {
      x.entry.rejection = `injected ${fault.oauthError}`;
      const description = fault.description === undefined ? 'injected by the fake' : fault.description;
      x.json(fault.status ?? 400, { error: fault.oauthError, error_description: description }, NO_STORE);
      return false;
    }
    const headers: Record<string, string> = { ...fault.headers };
    const retryAfter =
      fault.retryAfter === undefined ? ([429, 503].includes(fault.status) ? 1 : null) : fault.retryAfter;
    if (retryAfter !== null) headers['Retry-After'] = String(retryAfter);
    const body = fault.body ?? `<html><body><h1>${fault.status} Error</h1></body></html>`;
    x.text(fault.status, body, fault.contentType ?? 'text/html', headers);
    return false;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }

  private async dispatch(x: Exchange, route: Route, body: string): Promise<void> {
    switch (route.endpoint) {
      case 'authorize':
        return route.decision
          ? this.authorize.consentDecision(x, route.boundClientId)
          : this.authorize.handle(x, body, route.boundClientId);
      case 'token':
        return this.token.handle(x, body, route.boundClientId);
      case 'revoke':
        return this.token.revoke(x, body);
      case 'smart-configuration':
        return x.json(200, smartConfiguration(advertisedEndpoints(this.state, x.req)));
      case 'openid-configuration':
        return x.json(200, openidConfiguration(advertisedEndpoints(this.state, x.req)));
      case 'metadata':
        return this.fhir.metadata(x);
      case 'jwks':
        return x.json(200, { keys: [this.state.keys.publicJwk] });
      case 'fhir':
        return this.fhir.handle(x, body);
      case 'ehr-launch':
        return ehrLaunchEndpoint(this.state, x);
      case 'bulk-files':
        return this.fhir.bulkFile(x);
      case 'other':
        return x.text(404, 'Not Found', 'text/plain');
    }
  }
}
