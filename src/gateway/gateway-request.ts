import type { IncomingMessage } from 'node:http';

import { ErrorCode } from 'src/common/errors/domain-error';
import { CONTROL_CHARACTERS } from 'src/common/validation/text-rules';
import { forwardPathSegments } from 'src/fhir-client/fhir-client.service';

import { GatewayError } from './gateway.errors';

/** A gateway request's FHIR part: the path under the FHIR base and the query, as they came. */
export interface GatewayTarget {
  /** `Patient/123`; '' for the base itself. */
  path: string;
  segments: string[];
  /** The raw query string, without `?`: forwarded byte for byte (order, repeats, encoding). */
  query: string;
  /** The query, decoded. */
  params: URLSearchParams;
}

/** `/gateway/<slug>/fhir`, then the FHIR path (`/…`), the query (`?…`) or nothing. */
const PREFIX = /^\/gateway\/([^/?#]+)\/fhir(?=[/?]|$)/;

/** A request target the gateway serves (GatewayEntryService takes it before Express). */
export const isGatewayUrl = (url: string): boolean => PREFIX.test(url);

/** The organization slug of a gateway URL, decoded; 400 when it is not validly percent-encoded. */
export function gatewaySlug(url: string): string {
  const encoded = PREFIX.exec(url)?.[1];
  if (encoded === undefined) throw new GatewayError(ErrorCode.NotFound, 'Not a FHIR gateway URL.');
  return decoded(encoded);
}

/**
 * Refuses (400) a gateway URL whose slug, query parameter names or values carry a control character
 * (NUL, CR/LF…) once decoded, as the app's input guard refuses them on every other route. The FHIR
 * path needs no check: its segments allow only letters, digits and `-._$` (gatewayTarget).
 */
export function checkInputText(url: string): void {
  const q = url.indexOf('?');
  const slug = PREFIX.exec(q === -1 ? url : url.slice(0, q))?.[1];
  if (slug !== undefined && CONTROL_CHARACTERS.test(decoded(slug))) {
    throw controlCharacters('The organization in the URL');
  }
  if (q === -1) return;
  for (const [name, value] of new URLSearchParams(url.slice(q + 1))) {
    if (CONTROL_CHARACTERS.test(name)) throw controlCharacters('A query parameter name');
    if (CONTROL_CHARACTERS.test(value)) throw controlCharacters(`The query parameter "${name}"`);
  }
}

/**
 * The FHIR path and query of a gateway URL, read from the URL as received (the path and query are
 * forwarded as they came, never re-encoded). One trailing slash is dropped.
 */
export function gatewayTarget(url: string): GatewayTarget {
  const q = url.indexOf('?');
  const pathname = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q + 1);
  const prefix = PREFIX.exec(pathname);
  const path =
    prefix === null ? null : pathname.slice(prefix[0].length).replace(/^\//, '').replace(/\/$/, '');
  const segments = path === null ? null : forwardPathSegments(path);
  if (segments?.[0]?.startsWith('.')) {
    // `.well-known/smart-configuration` and the like: the gateway is no SMART authorization server.
    throw new GatewayError(
      ErrorCode.NotFound,
      'The gateway has no SMART configuration: send an API key as Authorization: Bearer <key>.',
    );
  }
  if (path === null || segments === null) {
    throw new GatewayError(
      ErrorCode.BadRequest,
      'The path is not a FHIR path: resource types, ids, _history, _search, $operations and metadata ' +
        'only (letters, digits, "-", ".", "_" and "$").',
    );
  }
  return { path, segments, query, params: new URLSearchParams(query) };
}

const controlCharacters = (what: string): GatewayError =>
  new GatewayError(
    ErrorCode.BadRequest,
    `${what} must not contain control characters (such as NUL or line breaks).`,
  );

/** A percent-encoded URL segment, decoded; 400 when it is malformed. */
function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new GatewayError(ErrorCode.BadRequest, 'The URL is not validly percent-encoded.');
  }
}

/**
 * The request body, read whole up to `limit` bytes (forwarded as one piece, so that a replay after a
 * 401 can send it again); undefined when there is none. 413 past the limit, before reading when the
 * Content-Length says so, else as soon as the body (chunked) goes past it.
 */
export async function readRequestBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const declared = req.headers['content-length'];
  if (declared === undefined && req.headers['transfer-encoding'] === undefined) return undefined;
  const tooLarge = () =>
    new GatewayError(ErrorCode.BadRequest, `The request body is larger than ${limit} bytes.`, {
      status: 413,
      issue: 'too-costly',
    });
  if (declared !== undefined && Number(declared) > limit) throw tooLarge();
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
    throw new GatewayError(ErrorCode.BadRequest, 'A compressed request body is not accepted.', {
      status: 415,
      issue: 'not-supported',
    });
  }
  return await new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (): void => {
      req.off('data', onData).off('end', onEnd).off('error', onError);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      // The rest is read and dropped, not the socket destroyed (a 413 must reach the caller);
      // the answer closes the connection (GatewayEntryService), so no more than that is read.
      stop();
      req.resume();
      reject(tooLarge());
    };
    const onEnd = (): void => {
      stop();
      resolve(size === 0 ? undefined : Buffer.concat(chunks));
    };
    const onError = (error: Error): void => {
      stop();
      reject(error);
    };
    req.on('data', onData).on('end', onEnd).on('error', onError);
  });
}

export const isForm = (contentType: string | undefined): boolean =>
  (contentType ?? '').split(';')[0].trim().toLowerCase() === 'application/x-www-form-urlencoded';

/** The search parameters a request carries: its query, plus a form-encoded body (`POST _search`). */
export function searchParams(
  query: string,
  contentType: string | undefined,
  body: Buffer | undefined,
): URLSearchParams {
  const params = new URLSearchParams(query);
  if (isForm(contentType) && body) {
    for (const [name, value] of new URLSearchParams(body.toString('utf8'))) params.append(name, value);
  }
  return params;
}
