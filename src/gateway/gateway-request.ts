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

/**
 * The organization slug of a gateway URL, decoded. 400 when it is not validly percent-encoded or
 * carries a control character (NUL, CR/LF…), as every other route of the app refuses them.
 */
export function gatewaySlug(url: string): string {
  const encoded = PREFIX.exec(url)?.[1];
  if (encoded === undefined) throw new GatewayError(ErrorCode.NotFound, 'Not a FHIR gateway URL.');
  const slug = decoded(encoded);
  if (CONTROL_CHARACTERS.test(slug)) throw controlCharacters('The organization in the URL');
  return slug;
}

/**
 * The FHIR path and query of a gateway URL, read from the URL as received (the path and query are
 * forwarded as they came, never re-encoded). One trailing slash is dropped. A query parameter name
 * or value carrying a control character once decoded is refused (400), as in gatewaySlug().
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
  const params = new URLSearchParams(query);
  for (const [name, value] of params) {
    if (CONTROL_CHARACTERS.test(name)) throw controlCharacters('A query parameter name');
    if (CONTROL_CHARACTERS.test(value)) throw controlCharacters(`The query parameter "${name}"`);
  }
  return { path, segments, query, params };
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
 * Content-Length says so.
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
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge();
    chunks.push(chunk);
  }
  return size === 0 ? undefined : Buffer.concat(chunks);
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
