import { ClientRequest, IncomingMessage, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { pipeline, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBrotliDecompress, createGunzip } from 'node:zlib';

import { Inject, Injectable } from '@nestjs/common';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { CredentialTarget } from 'src/connections/token-store.service';
import { OutboundHttp } from 'src/outbound/outbound-http.service';

import { FhirCall, FhirCallPolicy, RetryRule } from './fhir-call-policy';
import { FhirClientError, FhirErrorKind } from './fhir-client.errors';
import {
  FORWARDED_REQUEST_HEADERS,
  FORWARDED_RESPONSE_HEADERS,
  forwardPathSegments,
  ForwardRequest,
  ForwardResponse,
} from './forwarding';
import { isRetryableForward, isTransientFailure } from './retry-policy';

/**
 * Content codings the forwarder asks for and decodes (RFC 9110 §8.4.1): a large Bundle crosses the
 * network compressed, and reaches the caller decoded (its Content-Encoding is not passed on). Not
 * `deflate`: some servers send raw deflate under that name instead of the zlib format RFC 9110
 * §8.4.1.2 defines.
 */
const ACCEPT_ENCODING = 'gzip, br';

/** Methods whose requests carry a body, hence a Content-Length (0 without one) rather than none. */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/**
 * Sends the gateway's requests to the FHIR server as they came (FhirClientService.forward), on
 * node:http, around the same FhirCallPolicy as FhirClient's axios interceptors: the connection's
 * token, renewed before it ends and once after a 401 (the request replayed, its body too), retries
 * of transient failures for requests that may be sent twice, lastSync and lastError recorded.
 *
 * Not axios: a proxy's request path is its latency, and axios's per-request work (merging configs,
 * normalising headers, its adapter's options) was a quarter of the gateway's CPU per read (the
 * gateway section of bench/README.md). This is the exchange, and nothing else:
 * - the FHIR base is administrator-given: OutboundHttp's keep-alive agents, which apply the outbound
 *   address policy when it is `public`;
 * - no redirect is followed (a 3xx is an answer: a redirect could carry the token elsewhere), no
 *   proxy from the environment is used;
 * - EPIC_HTTP_TIMEOUT_MS bounds the wait for the answer's head; its body's pace is the caller's
 *   business (the gateway's GATEWAY_UPSTREAM_IDLE_MS);
 * - the answer's body is decoded from gzip or br.
 */
@Injectable()
export class FhirForwarder {
  constructor(
    private readonly policy: FhirCallPolicy,
    private readonly outbound: OutboundHttp,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** See FhirClientService.forward. */
  async forward(target: CredentialTarget, request: ForwardRequest): Promise<ForwardResponse> {
    if (forwardPathSegments(request.path) === null) {
      throw new FhirClientError(FhirErrorKind.Request, 'The path is not a FHIR path.');
    }
    const headers: Record<string, string> = {
      accept: 'application/fhir+json',
      'accept-encoding': ACCEPT_ENCODING,
      'user-agent': 'epic-connect',
    };
    const forwarded: Record<string, string> = {};
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const value = request.headers?.[name];
      const text = Array.isArray(value) ? value.join(', ') : value;
      if (text !== undefined && text !== '') forwarded[name] = text;
    }
    Object.assign(headers, forwarded);
    const method = request.method.toUpperCase();
    if (request.body !== undefined || BODY_METHODS.has(method)) {
      headers['content-length'] = String(request.body?.length ?? 0);
    }
    const query = request.query ?? '';
    const rule: RetryRule = {
      retryable: isRetryableForward(method, request.path, query, forwarded),
      maxWaitMs: (request.maxWaitSeconds ?? this.config.env.FHIR_RETRY_MAX_WAIT_SECONDS) * 1000,
      onThrottled: request.onThrottled,
    };
    const call: FhirCall = { target, retries: 0 };
    for (;;) {
      const credential = await this.policy.credentialFor(call);
      const base = credential.fhirBaseUrl;
      const url = `${base}${request.path === '' ? '' : `/${request.path}`}${query === '' ? '' : `?${query}`}`;
      headers.authorization = this.policy.authorization(credential);
      let answer: IncomingMessage;
      try {
        answer = await this.exchange(url, method, headers, request.body, request.signal);
      } catch (error) {
        if (request.signal?.aborted) throw error; // the caller left: nothing to record
        const code = (error as NodeJS.ErrnoException).code;
        // No answer: the server could not be reached. Only a network failure or timeout is retried;
        // another (a certificate refused, an address the outbound policy refuses) is not.
        const retryable = rule.retryable && isTransientFailure(undefined, code);
        const next = await this.policy.failed(call, { code, error }, { ...rule, retryable });
        if ('error' in next) throw next.error;
        await sleep(next.delayMs, undefined, { signal: request.signal });
        continue;
      }
      const status = answer.statusCode ?? 502;
      if (status === 401) {
        answer.destroy();
        await this.policy.rejected(call);
        continue;
      }
      if (isTransientFailure(status)) {
        const next = await this.policy.failed(
          call,
          { status, retryAfter: answer.headers['retry-after'] },
          rule,
        );
        if ('delayMs' in next) {
          answer.destroy();
          await sleep(next.delayMs, undefined, { signal: request.signal });
          continue;
        }
        // A write sent once: the server's own answer (its OperationOutcome, its Retry-After) is the answer.
        if (!rule.retryable) return this.answerOf(answer, method, base);
        answer.destroy();
        throw next.error;
      }
      // The server answered (a 4xx other than 401 too): the connection works, if its answer can be read.
      const forwarded = this.answerOf(answer, method, base);
      await this.policy.answered(call, status >= 400 ? 'fhir_error' : 'success');
      return forwarded;
    }
  }

  /** One request: resolves with the answer's head (its body unread), rejects with Node's error. */
  private exchange(
    url: string,
    method: string,
    headers: Record<string, string>,
    body: Buffer | undefined,
    signal: AbortSignal | undefined,
  ): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const https = url.startsWith('https:');
      const send = https ? httpsRequest : httpRequest;
      let req: ClientRequest;
      try {
        const agent = https ? this.outbound.httpsAgent : this.outbound.httpAgent;
        req = send(url, { method, headers, agent, signal });
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      const timeoutMs = this.config.env.EPIC_HTTP_TIMEOUT_MS;
      const timer = setTimeout(() => {
        req.destroy(Object.assign(new Error(`timeout of ${timeoutMs}ms exceeded`), { code: 'ETIMEDOUT' }));
      }, timeoutMs);
      req.once('response', (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      req.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      req.end(body);
    });
  }

  /** The answer as forward returns it: FHIR's headers only, the body decoded. */
  private answerOf(answer: IncomingMessage, method: string, fhirBaseUrl: string): ForwardResponse {
    const headers: Record<string, string> = {};
    for (const name of FORWARDED_RESPONSE_HEADERS) {
      const value = answer.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const stream = decoded(answer, method);
    if (!stream) {
      answer.destroy();
      // An answer that cannot be read: a bad gateway's (502), as a server that could not be reached.
      throw new FhirClientError(
        FhirErrorKind.Unavailable,
        `Epic answered in a content coding that was not asked for (${answer.headers['content-encoding']}).`,
        { network: 'unreachable' },
      );
    }
    return { status: answer.statusCode!, headers, stream, fhirBaseUrl };
  }
}

/** The body without its content coding; undefined for a coding not asked for. */
function decoded(answer: IncomingMessage, method: string): Readable | undefined {
  const coding = answer.headers['content-encoding']?.trim().toLowerCase();
  // No body to decode (a 201 or 202 that names a coding for an empty body): a decoder would fail on it.
  const bodiless =
    method === 'HEAD' ||
    answer.statusCode === 204 ||
    answer.statusCode === 304 ||
    answer.headers['content-length'] === '0';
  if (!coding || coding === 'identity' || bodiless) return answer;
  const decoder =
    coding === 'gzip' || coding === 'x-gzip'
      ? createGunzip()
      : coding === 'br'
        ? createBrotliDecompress()
        : undefined;
  // An error on either side (a cut or corrupt body) fails the decoded stream and closes the other.
  return decoder && pipeline(answer, decoder, () => undefined);
}
