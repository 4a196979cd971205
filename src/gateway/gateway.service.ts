import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { Inject, Injectable, Logger } from '@nestjs/common';

import { ErrorCode } from 'src/common/errors/domain-error';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { CredentialTarget, TokenStoreService } from 'src/connections/token-store.service';
import {
  FhirClientService,
  forwardPathSegments,
  ForwardRequest,
  ForwardResponse,
  RESOURCE_TYPE_PATTERN,
} from 'src/fhir-client/fhir-client.service';

import { GatewayCaller } from './gateway-caller';
import {
  BaseUrlRewriteStream,
  baseUrlReplacements,
  Replacement,
  rewriteBytes,
  rewriteText,
} from './base-url-rewriter';
import { gatewayCapabilityStatement, gatewayCapabilityStatementXml } from './capability-statement';
import { BulkJobsRepository } from './bulk-jobs.repository';
import { AccessRefusal, bulkJobOf, isBulkJobPath, isExportKickOff, refuseAccess } from './gateway-access';
import { gatewayTarget, isForm, readRequestBody, searchParams } from './gateway-request';
import { basePagingId, PagingIdScanner, PagingMemory } from './paging-links';
import { GatewayError } from './gateway.errors';
import { GATEWAY_THROTTLE, GatewayThrottle } from './throttle-seam';
import { GatewayTrafficService } from './traffic/gateway-traffic.service';
import { idleLimited, readAhead } from './upstream-body';

/** Selects one of the organization's users' own connections instead of the organization's. */
export const USER_HEADER = 'x-epic-connect-user';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * An answer up to this size is read whole before it is sent: out with its Content-Length in one
 * write (most reads and small searches), and a server failing before its end is answered with a
 * whole OperationOutcome. Longer ones are streamed after their first this-many bytes.
 */
const WHOLE_ANSWER_BYTES = 64 * 1024;

/** A CapabilityStatement is read whole to rewrite its security; Epic's are well under this. */
const MAX_CAPABILITY_STATEMENT_BYTES = 16 * 1024 * 1024;

/**
 * The FHIR gateway: one caller's FHIR request, checked against its API key's permissions and sent
 * to the organization's FHIR server with the organization's token (FhirClientService.forward), the
 * answer streamed back with every URL under that server's base pointing at the gateway instead.
 */
@Injectable()
export class GatewayService {
  private readonly logger = new Logger(GatewayService.name);
  /** Per pair of bases (the server's, the gateway's): what to replace in answers. */
  private readonly replacements = new Map<string, Replacement[]>();

  constructor(
    private readonly fhir: FhirClientService,
    private readonly tokens: TokenStoreService,
    @Inject(GATEWAY_THROTTLE) private readonly throttle: GatewayThrottle,
    private readonly traffic: GatewayTrafficService,
    private readonly bulkJobs: BulkJobsRepository,
    private readonly pagingLinks: PagingMemory,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Answers `req` (to `/gateway/<slug>/fhir…`, its caller authenticated: GatewayEntryService) on `res`. */
  async forward(caller: GatewayCaller, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { env } = this.config;
    const method = (req.method ?? 'GET').toUpperCase();
    const seen = this.recordWhenEnded(caller, method, res);
    // The caller went away (while its body is read, queued, or while the FHIR server answers): stop,
    // and stop retries.
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    const { path, segments, query, params } = gatewayTarget(req.url ?? '');
    seen.resourceType = resourceTypeOf(segments);
    const { keyId, resourceTypes } = caller.principal;
    // Paging links at the base are followed by an allow-listed key only if it was given them.
    const pagingId = resourceTypes === null ? null : basePagingId(segments, params);
    const knownPagingLink = pagingId !== null && this.pagingLinks.knows(keyId, pagingId);
    check(refuseAccess(caller.principal, { method, segments, params, knownPagingLink }));
    const body = await readRequestBody(req, env.GATEWAY_MAX_REQUEST_BYTES);
    if (body && isForm(req.headers['content-type'])) {
      // A search sent as a form carries its parameters (_include…) in the body: check them too.
      check(
        refuseAccess(caller.principal, {
          method,
          segments,
          params: searchParams(query, req.headers['content-type'], body),
        }),
      );
    }
    // A Bulk Data job's URLs serve only the key that started it (only these paths read the table).
    if (isBulkJobPath(segments)) await this.checkJobStarter(caller, segments, params);
    const target = await this.targetOf(caller, req.headers[USER_HEADER]);
    if ('credentialId' in target) seen.userId = String(req.headers[USER_HEADER]).trim();
    const organizationId = caller.organization.id;
    const release = await this.throttle.acquire(organizationId);
    let answer: ForwardResponse | undefined;
    try {
      if (abort.signal.aborted) return; // left while queued: nothing is sent
      answer = await this.send(organizationId, target, {
        method,
        path,
        query,
        headers: req.headers,
        body,
        maxWaitSeconds: env.GATEWAY_RETRY_AFTER_CAP_SECONDS,
        signal: abort.signal,
      });
      const gatewayBase = `${this.config.publicBaseUrl}/gateway/${encodeURIComponent(caller.organization.slug)}/fhir`;
      const replacements = this.replacementsFor(answer.fhirBaseUrl, gatewayBase);
      const metadata = method === 'GET' && path === 'metadata' && answer.status === 200;
      // A server that stops sending midway is cut off after GATEWAY_UPSTREAM_IDLE_MS of silence.
      const idleMs = env.GATEWAY_UPSTREAM_IDLE_MS;
      let answerBody: AsyncIterable<Buffer> = idleLimited(
        answer.stream,
        idleMs,
        () => {
          seen.stalled = true;
          return new GatewayError(
            ErrorCode.EpicUnavailable,
            `The FHIR server stopped sending its answer (nothing for ${idleMs} ms).`,
            { status: 504, issue: 'timeout' },
          );
        },
        upstreamBroke,
      );
      if (metadata) answerBody = await capabilityStatement(answer.headers['content-type'], answerBody);
      if (resourceTypes !== null && answer.status === 200) {
        // An allow-listed key's answer: the paging links at the base it holds are this key's to follow.
        answerBody = withPagingIds(answerBody, answer.fhirBaseUrl, (id) =>
          this.pagingLinks.remember(keyId, id),
        );
      }
      // Nothing is sent before the answer's end or its first WHOLE_ANSWER_BYTES (upstream-body.ts).
      const ahead = await readAhead(answerBody, WHOLE_ANSWER_BYTES);
      const statusUrl = answer.headers['content-location'];
      if (isExportKickOff(segments) && answer.status === 202 && statusUrl !== undefined) {
        // Recorded before the caller learns the status URL, so its first poll finds the job.
        await this.bindJob(caller, rewriteText(statusUrl, replacements), gatewayBase);
      }
      res.statusCode = answer.status;
      for (const [name, value] of Object.entries(answer.headers)) {
        res.setHeader(name, rewriteText(value, replacements));
      }
      if ('whole' in ahead) {
        const body = rewriteBytes(ahead.whole, replacements);
        seen.streamedBytes = body.length;
        // RFC 9110 §8.6: none on a 204 or 304, nor on a HEAD (its length would be the GET's).
        if (method !== 'HEAD' && answer.status !== 204 && answer.status !== 304) {
          res.setHeader('Content-Length', body.length);
        }
        res.end(body);
        return;
      }
      // Streamed: a large Bundle passes through in pieces, never whole in memory.
      await pipeline(ahead.rest, new BaseUrlRewriteStream(replacements), countBytes(seen), res);
    } catch (error) {
      // The caller left: its cancelled call (or broken stream) is nobody's error, and not logged.
      if (abort.signal.aborted) return;
      throw error;
    } finally {
      // Whatever stopped the answer early, the call to the server stops too.
      if (answer && !answer.stream.readableEnded) answer.stream.destroy();
      release();
    }
  }

  /** baseUrlReplacements(), remembered: the same few pairs of bases serve every request. */
  private replacementsFor(upstreamBase: string, gatewayBase: string): Replacement[] {
    const key = `${upstreamBase} ${gatewayBase}`;
    let replacements = this.replacements.get(key);
    if (!replacements) {
      if (this.replacements.size >= 1_000) this.replacements.clear();
      replacements = baseUrlReplacements(upstreamBase, gatewayBase);
      this.replacements.set(key, replacements);
    }
    return replacements;
  }

  /**
   * Records the request when its answer has ended, or the caller left (metrics at once, the access
   * record in the next batch: GatewayTrafficService). What the request turns out to be is filled
   * in as it is known. Never the query string, the body or the resource id (they identify patients).
   */
  private recordWhenEnded(caller: GatewayCaller, method: string, res: ServerResponse): AccessSeen {
    const started = performance.now();
    const at = new Date();
    const seen: AccessSeen = { resourceType: null, userId: null, streamedBytes: null, stalled: false };
    res.once('close', () => {
      // Answers the gateway wrote itself (errors) carry their Content-Length; streamed ones are counted.
      const length = Number(res.getHeader('content-length') ?? 0);
      this.traffic.requestEnded({
        organizationId: caller.organization.id,
        apiKeyId: caller.principal.keyId,
        userId: seen.userId,
        method,
        resourceType: seen.resourceType,
        // 504: the server stalled midway, the answer was cut off; 499: the caller left before any
        // answer (nginx's convention).
        status: seen.stalled ? 504 : res.headersSent ? res.statusCode : 499,
        durationMs: performance.now() - started,
        bytesSent: seen.streamedBytes ?? (Number.isFinite(length) ? length : 0),
        at,
      });
    });
    return seen;
  }

  /**
   * Refuses a Bulk Data job URL unless the caller's key started that job through the gateway: 404
   * alike for a job unknown here and another key's (a status URL says nothing of whose it is).
   */
  private async checkJobStarter(
    caller: GatewayCaller,
    segments: string[],
    params: URLSearchParams,
  ): Promise<void> {
    const job = bulkJobOf(segments, params);
    const started =
      job !== null && (await this.bulkJobs.startedBy(caller.organization.id, job, caller.principal.keyId));
    if (!started) {
      throw new GatewayError(
        ErrorCode.NotFound,
        'No Bulk Data export of this API key at this URL: the job is unknown, expired, or was ' +
          'started with another API key (only the keys that kicked it off may poll, download or cancel it).',
      );
    }
  }

  /**
   * Records which key started the job a kick-off's 202 names (its status URL, rewritten to the
   * gateway). A status URL the gateway does not recognise as a job's is not recorded: the caller
   * gets it as the server sent it, and its job URLs are then refused as unknown (404).
   */
  private async bindJob(caller: GatewayCaller, statusUrl: string, gatewayBase: string): Promise<void> {
    const rest = statusUrl.startsWith(`${gatewayBase}/`) ? statusUrl.slice(gatewayBase.length + 1) : null;
    const q = rest?.indexOf('?') ?? -1;
    // A trailing `/` is trimmed, as gatewayTarget() trims it from the caller's polls.
    const path = rest === null ? null : (q === -1 ? rest : rest.slice(0, q)).replace(/\/$/, '');
    const segments = path === null ? null : forwardPathSegments(path);
    const job = segments
      ? bulkJobOf(segments, new URLSearchParams(q === -1 ? '' : rest!.slice(q + 1)))
      : null;
    if (job === null) {
      this.logger.warn(
        { organizationId: caller.organization.id },
        'Bulk Data kick-off answered with a status URL of an unknown layout: the job is not bound to its key',
      );
      return;
    }
    try {
      await this.bulkJobs.record(caller.organization.id, job, caller.principal.keyId);
    } catch (error) {
      // The server runs the export anyway: say so, rather than a 500 that reads as "nothing happened".
      this.logger.error(
        { organizationId: caller.organization.id, keyId: caller.principal.keyId, job, err: error },
        'Bulk Data export started on the FHIR server, but its job could not be bound to the API key',
      );
      throw new GatewayError(
        ErrorCode.EpicUnavailable,
        'The FHIR server started the Bulk Data export, but the gateway could not record it for this API ' +
          'key, so its status URL would not be served: kick it off again later.',
        { status: 502, issue: 'exception' },
      );
    }
  }

  /**
   * Forwards, telling the throttle at once of every 429 the FHIR server answers (before any retry):
   * the whole organization slows down on every instance, not just this request.
   */
  private send(
    organizationId: string,
    target: CredentialTarget,
    request: ForwardRequest,
  ): Promise<ForwardResponse> {
    return this.fhir.forward(target, {
      ...request,
      onThrottled: (retryAfterSeconds) => {
        void this.throttle.upstreamThrottled(organizationId, retryAfterSeconds);
      },
    });
  }

  /**
   * Whose connection the request uses: the organization's own, or with `X-Epic-Connect-User` (and
   * a key allowed to) that user's live connection in the same organization, newest first. Another
   * organization's user, an unknown one and one without a connection here look alike (403).
   */
  private async targetOf(
    caller: GatewayCaller,
    header: string | string[] | undefined,
  ): Promise<CredentialTarget> {
    if (header === undefined) return { organizationId: caller.organization.id };
    if (!caller.principal.userConnections) {
      throw new GatewayError(
        ErrorCode.Forbidden,
        "This API key may not use users' own connections (X-Epic-Connect-User).",
      );
    }
    const userId = Array.isArray(header) ? undefined : header.trim();
    if (!userId || !UUID.test(userId)) {
      throw new GatewayError(ErrorCode.BadRequest, 'X-Epic-Connect-User must be one user id (a UUID).');
    }
    const theirs = await this.tokens.userConnectionIn(userId, caller.organization.id);
    if (theirs.liveCredentialId !== null) return { credentialId: theirs.liveCredentialId };
    if (theirs.any) {
      throw new GatewayError(
        ErrorCode.ReauthenticationRequired,
        `The connection of user ${userId} ended: they must launch the app or connect their Epic account again.`,
        { organizationId: caller.organization.id },
      );
    }
    throw new GatewayError(ErrorCode.Forbidden, `User ${userId} has no connection in this organization.`);
  }
}

/** What forward learns of a request for its access record. */
interface AccessSeen {
  resourceType: string | null;
  userId: string | null;
  streamedBytes: number | null;
  /** The server's answer stalled (GATEWAY_UPSTREAM_IDLE_MS): recorded as 504 though headers went out. */
  stalled: boolean;
}

/**
 * The resource type of the request (its first path segment), or null at the base, `metadata` and
 * system-level operations. Only the type: the id that may follow names a patient.
 */
function resourceTypeOf(segments: string[]): string | null {
  const first = segments[0];
  return first !== undefined && RESOURCE_TYPE_PATTERN.test(first) ? first : null;
}

/** Counts the bytes of a streamed answer as they pass (for the access record). */
function countBytes(seen: AccessSeen): Transform {
  seen.streamedBytes = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen.streamedBytes = (seen.streamedBytes ?? 0) + chunk.length;
      done(null, chunk);
    },
  });
}

/** Throws the refusal: 405 for a method outside FHIR's API, 403 for what the key may not do. */
function check(refusal: AccessRefusal | null): void {
  if (refusal?.kind === 'method') {
    throw new GatewayError(ErrorCode.BadRequest, refusal.message, { status: 405, issue: 'not-supported' });
  }
  if (refusal) throw new GatewayError(ErrorCode.Forbidden, refusal.message);
}

/**
 * A 200 answer to `metadata`, read whole (bounded) to replace the server's security with the
 * gateway's: JSON or FHIR XML, by its content type, or by its first character when the server named
 * none. It fails closed: a statement that cannot be read is refused (502), never passed on as the
 * server wrote it, since it would name the server's OAuth endpoints.
 */
async function capabilityStatement(
  contentType: string | undefined,
  body: AsyncIterable<Buffer>,
): Promise<AsyncIterable<Buffer>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > MAX_CAPABILITY_STATEMENT_BYTES) {
      throw new GatewayError(
        ErrorCode.EpicUnavailable,
        'The FHIR server sent an oversized CapabilityStatement.',
        {
          status: 502,
        },
      );
    }
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  const xml =
    /xml/i.test(contentType ?? '') || (!/json/i.test(contentType ?? '') && text.trimStart().startsWith('<'));
  if (xml) {
    const rewritten = gatewayCapabilityStatementXml(text);
    if (rewritten === null) {
      throw new GatewayError(
        ErrorCode.EpicUnavailable,
        "The FHIR server's XML CapabilityStatement could not be read to replace its security section; " +
          'ask for JSON (Accept: application/fhir+json).',
        { status: 502 },
      );
    }
    return toPieces(rewritten);
  }
  let statement: unknown;
  try {
    statement = JSON.parse(text);
  } catch {
    throw new GatewayError(
      ErrorCode.EpicUnavailable,
      "The FHIR server's CapabilityStatement is not valid JSON or FHIR XML; the gateway does not pass it on.",
      { status: 502 },
    );
  }
  return toPieces(JSON.stringify(gatewayCapabilityStatement(statement)));
}

/**
 * The pieces of `source` as they are, telling `found` each paging id in them before they go on: scanned
 * before the base is rewritten, so a link is matched at the server's own base.
 */
async function* withPagingIds(
  source: AsyncIterable<Buffer>,
  upstreamBase: string,
  found: (id: string) => void,
): AsyncGenerator<Buffer> {
  const scanner = new PagingIdScanner(upstreamBase);
  for await (const piece of source) {
    scanner.push(piece).forEach(found);
    yield piece;
  }
  // Before the answer ends: the caller cannot follow a link it has not wholly received.
  scanner.end().forEach(found);
}

/**
 * A read of the server's answer body that failed (its connection reset after the headers): the
 * server's failure, 502, not ours. Before the first piece the caller gets a whole OperationOutcome;
 * midway its answer is cut, as the server's was.
 */
function upstreamBroke(error: unknown): Error {
  if (error instanceof GatewayError) return error;
  return new GatewayError(
    ErrorCode.EpicUnavailable,
    'The connection to the FHIR server broke while it was sending its answer. Try again.',
    { status: 502, issue: 'transient', cause: error },
  );
}

/** A text as one piece. */
function toPieces(text: string): AsyncIterable<Buffer> {
  return Readable.from([Buffer.from(text)]);
}
