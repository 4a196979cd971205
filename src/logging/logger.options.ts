import { IncomingMessage, ServerResponse } from 'node:http';

import { Params } from 'nestjs-pino';
import { destination, stdSerializers } from 'pino';

import { AppConfig } from 'src/config/app-config';

import { redactSecretFields, redactSecretPatterns } from './redact';

/** Request-id header accepted from a trusted proxy, echoed back, and attached to every log line. */
export const REQUEST_ID_HEADER = 'x-request-id';

/**
 * A request's id: the one a trusted proxy sent (`X-Request-Id`, when it looks like one), else a new
 * UUID; echoed back on the answer.
 */
export function requestId(req: IncomingMessage, res: ServerResponse): string {
  const incoming = req.headers[REQUEST_ID_HEADER];
  const id =
    typeof incoming === 'string' && /^[\w.-]{1,100}$/.test(incoming) ? incoming : crypto.randomUUID();
  res.setHeader(REQUEST_ID_HEADER, id);
  return id;
}

/** nestjs-pino options: request ids, redaction by path, no health-probe logs, pretty only in dev. */
export function loggerParams(config: AppConfig): Params {
  const options = {
    level: config.env.LOG_LEVEL,
    // Secret-named fields at any depth, in what is logged and in a child logger's bindings. `req`,
    // `res` and `err` are left to their serializers below, which keep only safe fields (`err`'s
    // output is walked there). Not pino's `redact` paths: see redactSecretFields.
    formatters: {
      log: (object: Record<string, unknown>) => redactSecretFields(object, SERIALIZED),
      bindings: (bindings: Record<string, unknown>) => redactSecretFields(bindings, SERIALIZED),
    },
    // Fields are covered above; this catches secrets of a known shape (API keys) anywhere in a line.
    hooks: { streamWrite: redactSecretPatterns },
    genReqId: requestId,
    autoLogging: { ignore: (req: IncomingMessage) => (req.url ?? '').startsWith('/health') },
    // Log the path without its query string: OAuth callbacks carry codes and state there.
    serializers: {
      // `code` is redacted everywhere (OAuth authorization codes), so keep an error's code apart.
      // Database errors carry the statement and its parameters (hashes, ciphertexts): never log those.
      // An HTTP client's error carries its request (URL with the query string, headers, body: patient
      // data through the FHIR gateway) and response: never log those, at any depth of `cause`.
      err: (err: Error & { code?: unknown }) =>
        redactSecretFields({
          ...withoutRequestData(stdSerializers.err(err)),
          errorCode: err.code,
        }),
      req: (req: { id: string; method: string; url: string; remoteAddress?: string }) => ({
        id: req.id,
        method: req.method,
        url: req.url.split('?')[0],
        remoteAddress: req.remoteAddress,
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
    transport:
      config.env.NODE_ENV === 'development'
        ? { target: 'pino-pretty', options: { singleLine: true, translateTime: 'SYS:standard' } }
        : undefined,
  } satisfies Params['pinoHttp'];
  return {
    // The FHIR gateway's requests never reach Express: it writes their lines itself, when
    // GATEWAY_REQUEST_LOG (GatewayEntryService).
    pinoHttp: config.env.LOG_FILE
      ? [
          { ...options, transport: undefined },
          destination({ dest: config.env.LOG_FILE, mkdir: true, sync: true }),
        ]
      : options,
  };
}

/** Top-level keys with a serializer of their own (below), which the field redaction leaves to it. */
const SERIALIZED: ReadonlySet<string> = new Set(['req', 'res', 'err']);

/** Keys of a serialized error that hold a request or its answer (axios, TypeORM). */
const REQUEST_DATA = ['parameters', 'query', 'driverError', 'config', 'request', 'response'];

function withoutRequestData(serialized: Record<string, unknown>, depth = 0): Record<string, unknown> {
  const kept = Object.fromEntries(Object.entries(serialized).filter(([key]) => !REQUEST_DATA.includes(key)));
  if (kept.cause && typeof kept.cause === 'object' && depth < 5) {
    kept.cause = withoutRequestData(kept.cause as Record<string, unknown>, depth + 1);
  }
  return kept;
}
