import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { Inject, Injectable } from '@nestjs/common';
import { Response } from 'express';

import { ErrorCode } from 'src/common/errors/domain-error';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { CredentialTarget, TokenStoreService } from 'src/connections/token-store.service';
import {
  FhirClientService,
  ForwardRequest,
  ForwardResponse,
  RESOURCE_TYPE_PATTERN,
} from 'src/fhir-client/fhir-client.service';

import { GatewayCaller, GatewayRequest } from './api-key.guard';
import { BaseUrlRewriteStream, baseUrlReplacements, rewriteText } from './base-url-rewriter';
import { gatewayCapabilityStatement } from './capability-statement';
import { AccessRefusal, refuseAccess } from './gateway-access';
import { gatewayTarget, isForm, readRequestBody, searchParams } from './gateway-request';
import { GatewayError } from './gateway.errors';
import { GATEWAY_THROTTLE, GatewayThrottle } from './throttle-seam';
import { GatewayTrafficService } from './traffic/gateway-traffic.service';

/** Selects one of the organization's users' own connections instead of the organization's. */
export const USER_HEADER = 'x-epic-connect-user';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A CapabilityStatement is read whole to rewrite its security; Epic's are well under this. */
const MAX_CAPABILITY_STATEMENT_BYTES = 16 * 1024 * 1024;

/**
 * The FHIR gateway: one caller's FHIR request, checked against its API key's permissions and sent
 * to the organization's FHIR server with the organization's token (FhirClientService.forward), the
 * answer streamed back with every URL under that server's base pointing at the gateway instead.
 */
@Injectable()
export class GatewayService {
  constructor(
    private readonly fhir: FhirClientService,
    private readonly tokens: TokenStoreService,
    @Inject(GATEWAY_THROTTLE) private readonly throttle: GatewayThrottle,
    private readonly traffic: GatewayTrafficService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async forward(caller: GatewayCaller, req: GatewayRequest, res: Response): Promise<void> {
    const { env } = this.config;
    const method = req.method.toUpperCase();
    const seen = this.recordWhenEnded(caller, method, res);
    const { path, segments, query } = gatewayTarget(req.originalUrl);
    seen.resourceType = resourceTypeOf(segments);
    check(refuseAccess(caller.principal, { method, segments, params: new URLSearchParams(query) }));
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
    const target = await this.targetOf(caller, req.headers[USER_HEADER]);
    if ('credentialId' in target) seen.userId = String(req.headers[USER_HEADER]).trim();
    const organizationId = caller.organization.id;
    // The caller went away (while queued, or while the FHIR server answers): stop, and stop retries.
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    const release = await this.throttle.acquire(organizationId);
    try {
      if (abort.signal.aborted) return; // left while queued: nothing is sent
      const answer = await this.send(organizationId, target, {
        method,
        path,
        query,
        headers: req.headers,
        body,
        maxWaitSeconds: env.GATEWAY_RETRY_AFTER_CAP_SECONDS,
        signal: abort.signal,
      });
      const gatewayBase = `${this.config.publicBaseUrl}/gateway/${encodeURIComponent(caller.organization.slug)}/fhir`;
      const replacements = baseUrlReplacements(answer.fhirBaseUrl, gatewayBase);
      const metadata = method === 'GET' && path === 'metadata' && answer.status === 200;
      const stream = metadata ? await capabilityStatement(answer) : answer.stream;
      res.status(answer.status);
      for (const [name, value] of Object.entries(answer.headers)) {
        res.setHeader(name, rewriteText(value, replacements));
      }
      // Streamed: a large Bundle passes through in pieces, never whole in memory.
      await pipeline(stream, new BaseUrlRewriteStream(replacements), countBytes(seen), res);
    } catch (error) {
      // The caller left: its cancelled call (or broken stream) is nobody's error, and not logged.
      if (abort.signal.aborted) return;
      throw error;
    } finally {
      release();
    }
  }

  /**
   * Records the request when its answer has ended, or the caller left (metrics at once, the access
   * record in the next batch: GatewayTrafficService). What the request turns out to be is filled
   * in as it is known. Never the query string, the body or the resource id (they identify patients).
   */
  private recordWhenEnded(caller: GatewayCaller, method: string, res: Response): AccessSeen {
    const started = performance.now();
    const at = new Date();
    const seen: AccessSeen = { resourceType: null, userId: null, streamedBytes: null };
    res.once('close', () => {
      // Answers the gateway wrote itself (errors) carry their Content-Length; streamed ones are counted.
      const length = Number(res.getHeader('content-length') ?? 0);
      this.traffic.requestEnded({
        organizationId: caller.organization.id,
        apiKeyId: caller.principal.keyId,
        userId: seen.userId,
        method,
        resourceType: seen.resourceType,
        // 499: the caller left before any answer (nginx's convention).
        status: res.headersSent ? res.statusCode : 499,
        durationMs: performance.now() - started,
        bytesSent: seen.streamedBytes ?? (Number.isFinite(length) ? length : 0),
        at,
      });
    });
    return seen;
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
    const theirs = (await this.tokens.listUserCredentials(userId)).filter(
      (credential) => credential.organizationId === caller.organization.id,
    );
    const live = theirs.find((credential) => credential.endedAt === null);
    if (live) return { credentialId: live.id };
    if (theirs.length > 0) {
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

/** A JSON CapabilityStatement with the gateway's security (gatewayCapabilityStatement); XML as it came. */
async function capabilityStatement(answer: ForwardResponse): Promise<Readable> {
  if (!/json/i.test(answer.headers['content-type'] ?? '')) return answer.stream;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of answer.stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_CAPABILITY_STATEMENT_BYTES) {
      answer.stream.destroy();
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
  let statement: unknown;
  try {
    statement = JSON.parse(text);
  } catch {
    return Readable.from([text]);
  }
  return Readable.from([JSON.stringify(gatewayCapabilityStatement(statement))]);
}
