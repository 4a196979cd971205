import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';

import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { PinoLogger } from 'nestjs-pino';
import proxyAddr from 'proxy-addr';

import { prepareAnswer } from 'src/common/filters/error-answer';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { requestId } from 'src/logging/logger.options';

import { GatewayAuthenticator } from './gateway-caller';
import { checkInputText, gatewaySlug, isGatewayUrl } from './gateway-request';
import { GatewayService } from './gateway.service';
import { FHIR_JSON, toOperationOutcome } from './operation-outcome';

/**
 * The headers of every gateway answer: an API's answers are data, never rendered, framed or cached
 * (OWASP REST Security Cheat Sheet, "Security Headers"). HSTS when the app is served over HTTPS.
 */
function securityHeaders(https: boolean): [string, string][] {
  return [
    ['Cache-Control', 'no-store'],
    ['Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'"],
    ['X-Content-Type-Options', 'nosniff'],
    ['X-Frame-Options', 'DENY'],
    ['Referrer-Policy', 'no-referrer'],
    ['Cross-Origin-Resource-Policy', 'same-origin'],
    ...(https
      ? [['Strict-Transport-Security', 'max-age=31536000; includeSubDomains'] as [string, string]]
      : []),
  ];
}

/**
 * The FHIR gateway's way in: requests to `/gateway/<slug>/fhir…` are taken from the HTTP server
 * before Express sees them, so that they pay for none of what the pages and the JSON API need
 * (sessions, CSRF, helmet's page policies, body parsers, Nest's routing, guards and filters). What a
 * gateway request does need is here: the client's address (TRUST_PROXY, as Express reads it), the
 * API key (GatewayAuthenticator), security headers, errors as OperationOutcomes, and a log line
 * when GATEWAY_REQUEST_LOG. Every other request goes on to Express unchanged.
 */
@Injectable()
export class GatewayEntryService implements OnApplicationBootstrap {
  private readonly logger = new Logger('Gateway');
  private readonly requestLog = new Logger('GatewayRequest');
  private readonly headers: [string, string][];
  /** Express's `trust proxy` as configureApp sets it: one proxy hop with TRUST_PROXY, else none. */
  private readonly trustProxy: (address: string, hop: number) => boolean;

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly authenticator: GatewayAuthenticator,
    private readonly gateway: GatewayService,
    private readonly pino: PinoLogger,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.headers = securityHeaders(config.secureCookies);
    const hops = config.env.TRUST_PROXY ? 1 : 0;
    this.trustProxy = (_address, hop) => hop < hops;
  }

  /** Puts the gateway in front of Express on the app's HTTP server (none in an app context without one). */
  onApplicationBootstrap(): void {
    const server = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    if (!server) return;
    const others = server.listeners('request') as RequestListener[];
    server.removeAllListeners('request');
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (isGatewayUrl(req.url ?? '')) this.handle(req, res);
      else for (const listener of others) listener.call(server, req, res);
    });
  }

  /** One gateway request, answered whatever happens. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    for (const [name, value] of this.headers) res.setHeader(name, value);
    const answer = (): void => {
      this.serve(req, res).catch((error: unknown) => this.answerError(error, req, res));
    };
    if (!this.config.env.GATEWAY_REQUEST_LOG) return answer();
    this.logWhenDone(req, res);
    // As pino-http does: every line logged while the request is served carries it (its id).
    this.pino.runInContext(answer, { bindings: { req } });
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '';
    // Before the key, as the app's input guard runs before any other on every other route.
    checkInputText(url);
    const slug = gatewaySlug(url);
    const caller = await this.authenticator.callerOf(req.headers.authorization, this.clientIp(req), slug);
    await this.gateway.forward(caller, req, res);
  }

  /** The client's address, as Express's `req.ip` gives it under the app's `trust proxy`. */
  private clientIp(req: IncomingMessage): string | undefined {
    return req.socket.remoteAddress === undefined ? undefined : proxyAddr(req, this.trustProxy);
  }

  /**
   * An error as a FHIR OperationOutcome (described by the common seam, toErrorResponse, through
   * prepareAnswer, which also logs it and sets Retry-After). Once the answer has started streaming,
   * the only way left to say it failed is to cut it off.
   */
  private answerError(exception: unknown, req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '').split('?')[0];
    try {
      if (res.headersSent) {
        this.logger.warn({ err: exception, path }, 'FHIR gateway answer broken off');
        res.destroy();
        return;
      }
      const answer = toOperationOutcome(exception, prepareAnswer(exception, { path }, res, this.logger));
      if (answer.status === 401) {
        // RFC 6750 §3: the challenge; an error code only when a credential was presented (§3.1).
        res.setHeader(
          'WWW-Authenticate',
          req.headers.authorization ? 'Bearer error="invalid_token"' : 'Bearer',
        );
      }
      // A request refused before its body had all come (413 midway): the connection closes after
      // the answer, so that the rest is not read.
      if (!req.complete) res.setHeader('Connection', 'close');
      // No ETag: FHIR reads one as a resource version (FHIR R4 §3.1.0.4.1).
      const text = JSON.stringify(answer.body);
      res.statusCode = answer.status;
      res.setHeader('Content-Type', FHIR_JSON);
      res.setHeader('Content-Length', Buffer.byteLength(text));
      res.end(text);
    } catch (error) {
      this.logger.error({ err: error, path }, 'FHIR gateway error answer failed');
      res.destroy();
    }
  }

  /**
   * GATEWAY_REQUEST_LOG: the request line other routes get from the request logger (pino-http's
   * fields: the path without its query, the status, the time), and the request id echoed back.
   */
  private logWhenDone(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    // As pino-http does: the id on the request, the request and answer to the logger's serializers.
    Object.assign(req, { id: requestId(req, res) });
    res.once('close', () => {
      const fields = { req, res, responseTime: Math.round(performance.now() - started) };
      if (!res.writableFinished) this.requestLog.warn(fields, 'request aborted');
      else if (res.statusCode >= 500) this.requestLog.error(fields, 'request errored');
      else this.requestLog.log(fields, 'request completed');
    });
  }
}
