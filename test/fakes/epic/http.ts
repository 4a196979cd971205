import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Readable, Transform } from 'node:stream';
import {
  brotliCompressSync,
  createBrotliCompress,
  createDeflate,
  createGzip,
  deflateSync,
  gzipSync,
} from 'node:zlib';

import type { FakeEpicRequest } from './types';

const MAX_BODY_BYTES = 1024 * 1024;

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Parses form or query parameters. RFC 6749 §3.1/§3.2: parameters must not be repeated, so a repeated
 * name is reported instead of silently picking one.
 */
export function parseParams(search: string): { params: Record<string, string>; repeated?: string } {
  const params: Record<string, string> = {};
  let repeated: string | undefined;
  for (const [name, value] of new URLSearchParams(search)) {
    if (name in params) repeated ??= name;
    params[name] = value;
  }
  return { params, repeated };
}

export function isForm(req: IncomingMessage): boolean {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  return type === 'application/x-www-form-urlencoded';
}

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Adds parameters to a redirect URI, keeping any query it already has (RFC 6749 §3.1.2). */
export function withParams(uri: string, params: Record<string, string | undefined>): string {
  const url = new URL(uri);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined) url.searchParams.append(name, value);
  }
  return url.toString();
}

/** The content codings the fake can answer in (FakeEpic.compressAnswers). */
export type FakeEpicCoding = 'gzip' | 'deflate' | 'br';

const COMPRESS: Record<FakeEpicCoding, { whole: (bytes: Buffer) => Buffer; stream: () => Transform }> = {
  gzip: { whole: (bytes) => gzipSync(bytes), stream: () => createGzip() },
  deflate: { whole: (bytes) => deflateSync(bytes), stream: () => createDeflate() },
  br: { whole: (bytes) => brotliCompressSync(bytes), stream: () => createBrotliCompress() },
};

/** Whether the request's Accept-Encoding lists `coding` with a q-value above 0 (RFC 9110 §12.5.3). */
export function accepts(req: IncomingMessage, coding: FakeEpicCoding): boolean {
  const header = req.headers['accept-encoding'];
  if (typeof header !== 'string') return false;
  return header.split(',').some((item) => {
    const [name, ...params] = item.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return name.trim() === coding && (q === undefined || Number(q.slice(2)) > 0);
  });
}

/** Token responses must not be cached (RFC 6749 §5.1). */
export const NO_STORE = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };

/** One request being answered: every response goes through it, so it can be logged or dropped. */
export class Exchange {
  dropResponse = false;
  /** A `stallBody` fault: the bytes of the body sent before the answer stalls ('half': half of it). */
  stallAfterBytes?: number | 'half';
  /** Compress the answer's body in this coding (the request accepts it: FakeEpic.compressAnswers). */
  coding?: FakeEpicCoding;

  constructor(
    readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    readonly url: URL,
    readonly entry: FakeEpicRequest,
  ) {}

  json(status: number, body: unknown, headers: Record<string, string> = {}, contentType?: string): void {
    this.entry.responseBody = body;
    this.send(status, JSON.stringify(body), {
      'Content-Type': contentType ?? 'application/json;charset=utf-8',
      ...headers,
    });
  }

  text(status: number, body: string, contentType: string, headers: Record<string, string> = {}): void {
    this.send(status, body, { 'Content-Type': contentType, ...headers });
  }

  /** Headers only: 204, 304, or 201 with `Prefer: return=minimal`. */
  empty(status: number, headers: Record<string, string> = {}): void {
    this.send(status, '', headers);
  }

  /** A body written piece by piece, with backpressure (chunked: its length is not known up front). */
  stream(status: number, body: Readable, headers: Record<string, string>): void {
    this.entry.status = status;
    if (this.dropResponse) return this.drop();
    if (this.res.headersSent || this.res.destroyed) return;
    if (this.stallAfterBytes !== undefined) {
      this.res.writeHead(status, headers);
      return this.stallStream(body);
    }
    if (this.coding) {
      this.entry.coding = this.coding;
      this.res.writeHead(status, { ...headers, 'Content-Encoding': this.coding, Vary: 'Accept-Encoding' });
      pipeline(body, COMPRESS[this.coding].stream(), this.res).catch(() => this.res.destroy());
      return;
    }
    this.res.writeHead(status, headers);
    pipeline(body, this.res).catch(() => this.res.destroy());
  }

  redirect(location: string): void {
    this.entry.location = location;
    this.send(302, '', { Location: location, 'Cache-Control': 'no-store' });
  }

  drop(): void {
    this.req.socket.destroy();
  }

  private send(status: number, body: string, headers: Record<string, string>): void {
    this.entry.status = status;
    if (this.dropResponse) return this.drop();
    if (this.res.headersSent || this.res.destroyed) return;
    if (
      this.coding &&
      body !== '' &&
      status !== 204 &&
      status !== 304 &&
      this.stallAfterBytes === undefined
    ) {
      const compressed = COMPRESS[this.coding].whole(Buffer.from(body));
      this.entry.coding = this.coding;
      this.res.writeHead(status, {
        ...headers,
        'Content-Encoding': this.coding,
        Vary: 'Accept-Encoding',
        'Content-Length': String(compressed.length),
      });
      this.res.end(compressed);
      return;
    }
    this.res.writeHead(status, { ...headers, 'Content-Length': String(Buffer.byteLength(body)) });
    if (this.stallAfterBytes !== undefined) {
      const bytes = Buffer.from(body);
      const sent = this.stallAfterBytes === 'half' ? Math.floor(bytes.length / 2) : this.stallAfterBytes;
      // Flushes the headers and the first bytes, then nothing: the client waits for the rest.
      this.res.flushHeaders();
      if (sent > 0) this.res.write(bytes.subarray(0, Math.min(sent, bytes.length)));
      return;
    }
    this.res.end(body);
  }

  /** A streamed body cut short: its first bytes (`stallAfterBytes`, 64 KiB for 'half'), then nothing. */
  private stallStream(body: Readable): void {
    let left = this.stallAfterBytes === 'half' ? 64 * 1024 : (this.stallAfterBytes ?? 0);
    this.res.flushHeaders();
    body.on('data', (chunk: Buffer | string) => {
      const bytes = Buffer.from(chunk);
      if (left > 0) this.res.write(bytes.subarray(0, left));
      left -= Math.min(left, bytes.length);
      if (left === 0) body.destroy();
    });
  }
}
