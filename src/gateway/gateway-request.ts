import { Request } from 'express';

import { ErrorCode } from 'src/common/errors/domain-error';
import { forwardPathSegments } from 'src/fhir-client/fhir-client.service';

import { GatewayError } from './gateway.errors';

/** A gateway request's FHIR part: the path under the FHIR base and the query, as they came. */
export interface GatewayTarget {
  /** `Patient/123`; '' for the base itself. */
  path: string;
  segments: string[];
  /** The raw query string, without `?`: forwarded byte for byte (order, repeats, encoding). */
  query: string;
}

/** `/gateway/<slug>/fhir`, then the FHIR path. */
const PREFIX = /^\/gateway\/[^/?#]+\/fhir(?=\/|$)/;

/**
 * The FHIR path and query of a gateway URL, read from the URL as received (not from the decoded
 * route parameters, so that nothing is re-encoded on the way). One trailing slash is dropped.
 */
export function gatewayTarget(originalUrl: string): GatewayTarget {
  const q = originalUrl.indexOf('?');
  const pathname = q === -1 ? originalUrl : originalUrl.slice(0, q);
  const query = q === -1 ? '' : originalUrl.slice(q + 1);
  const prefix = PREFIX.exec(pathname)?.[0];
  const path =
    prefix === undefined ? null : pathname.slice(prefix.length).replace(/^\//, '').replace(/\/$/, '');
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
  return { path, segments, query };
}

/**
 * The request body, read whole up to `limit` bytes (forwarded as one piece, so that a replay after a
 * 401 can send it again); undefined when there is none. 413 past the limit, before reading when the
 * Content-Length says so.
 */
export async function readRequestBody(req: Request, limit: number): Promise<Buffer | undefined> {
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
