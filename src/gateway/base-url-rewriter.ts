import { Transform, TransformCallback } from 'node:stream';

/** What the FHIR server wrote, and what the gateway's caller sees instead. */
export interface Replacement {
  from: Buffer;
  to: Buffer;
}

/**
 * Bytes that continue a URL right after a match: `https://h/fhir/R4B` is not under
 * `https://h/fhir/R4`, nor `https://h:8443` under `https://h`. Anything else (`/`, `?`, `#`, a quote,
 * JSON's `\`, `<`, white space) ends the base.
 */
const CONTINUES_URL = /[A-Za-z0-9\-._~%:@+]/;

/**
 * The ways JSON may write `/` (RFC 8259 §7): as is, `\/`, or `\u002F` (hex digits in either case,
 * as some encoders write every slash). A base written one way is replaced by the gateway base
 * written the same way, so the answer keeps its encoder's style.
 */
const SLASH_ESCAPES = ['\\/', '\\u002F', '\\u002f'];

/**
 * Every spelling of the upstream FHIR base to replace with the gateway base: as the connection
 * stored it, with its scheme and host in lower case (URLs compare them without case, RFC 3986
 * §6.2.2.1), and wholly in lower case (a server that matched the stored base case-insensitively); each
 * plain and with its slashes JSON-escaped (`\/`, `\u002F`, `\u002f`). Both bases come without a
 * trailing slash.
 */
export function baseUrlReplacements(upstreamBase: string, gatewayBase: string): Replacement[] {
  const origin = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i.exec(upstreamBase)?.[0] ?? '';
  const spellings = new Set([
    upstreamBase,
    origin.toLowerCase() + upstreamBase.slice(origin.length),
    upstreamBase.toLowerCase(),
  ]);
  const replacements: Replacement[] = [];
  for (const from of spellings) {
    replacements.push({ from: Buffer.from(from), to: Buffer.from(gatewayBase) });
    if (!from.includes('/')) continue;
    for (const slash of SLASH_ESCAPES) {
      replacements.push({
        from: Buffer.from(from.replaceAll('/', slash)),
        to: Buffer.from(gatewayBase.replaceAll('/', slash)),
      });
    }
  }
  return replacements;
}

/**
 * Replaces the upstream base in a byte stream fed in pieces. A match may be split across pieces:
 * the end of each piece that could still begin one (the longest spelling, less a byte) waits for
 * the next, as does a match that ends a piece (the byte after it decides, CONTINUES_URL). Holds
 * at most that many bytes whatever the stream's size. Works on bytes, so a multi-byte character
 * split across pieces passes unchanged (the spellings are URLs, ASCII in practice).
 */
export class BaseUrlReplacer {
  private tail: Buffer = Buffer.alloc(0);
  private readonly hold: number;
  /** Per replacement, its next match at or after the scan position in the current data (-1: none). */
  private readonly next: number[];

  constructor(private readonly replacements: Replacement[]) {
    this.hold = Math.max(1, ...replacements.map((r) => r.from.length));
    this.next = replacements.map(() => -1);
  }

  /** The rewritten bytes that can be given out now; some may be held back until the next piece. */
  push(piece: Buffer): Buffer {
    return this.process(this.tail.length > 0 ? Buffer.concat([this.tail, piece]) : piece, false);
  }

  /** The bytes still held back, rewritten: call once at the end. */
  end(): Buffer {
    const rest = this.process(this.tail, true);
    this.tail = Buffer.alloc(0);
    return rest;
  }

  private process(data: Buffer, final: boolean): Buffer {
    const out: Buffer[] = [];
    const stale = this.next.map(() => true);
    let pos = 0;
    let heldFrom: number | undefined;
    for (;;) {
      let best = -1;
      let at = Infinity;
      for (let i = 0; i < this.replacements.length; i++) {
        if (stale[i] || (this.next[i] !== -1 && this.next[i] < pos)) {
          this.next[i] = data.indexOf(this.replacements[i].from, pos);
          stale[i] = false;
        }
        if (this.next[i] !== -1 && this.next[i] < at) {
          at = this.next[i];
          best = i;
        }
      }
      if (best === -1) break;
      const { from, to } = this.replacements[best];
      const end = at + from.length;
      if (end === data.length && !final) {
        // The next byte decides whether this is the base; keep at least what any partial match needs.
        heldFrom = Math.min(at, Math.max(pos, data.length - (this.hold - 1)));
        break;
      }
      if (end < data.length && CONTINUES_URL.test(String.fromCharCode(data[end]))) {
        // Another URL that begins like the base: keep its first byte and look again after it.
        out.push(data.subarray(pos, at + 1));
        pos = at + 1;
        continue;
      }
      out.push(data.subarray(pos, at), to);
      pos = end;
    }
    const keepFrom = final ? data.length : (heldFrom ?? Math.max(pos, data.length - (this.hold - 1)));
    out.push(data.subarray(pos, keepFrom));
    // Copied: the piece it came from may be reused by its producer.
    this.tail = Buffer.from(data.subarray(keepFrom));
    return out.length === 1 ? out[0] : Buffer.concat(out);
  }
}

/** A Transform stream that replaces the upstream base (BaseUrlReplacer) in what flows through it. */
export class BaseUrlRewriteStream extends Transform {
  private readonly replacer: BaseUrlReplacer;

  constructor(replacements: Replacement[]) {
    super();
    this.replacer = new BaseUrlReplacer(replacements);
  }

  override _transform(chunk: Buffer | string, _encoding: BufferEncoding, callback: TransformCallback): void {
    const out = this.replacer.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    callback(null, out.length > 0 ? out : undefined);
  }

  override _flush(callback: TransformCallback): void {
    const out = this.replacer.end();
    callback(null, out.length > 0 ? out : undefined);
  }
}

/** A whole body (an answer read to its end) with the upstream base replaced. */
export function rewriteBytes(bytes: Buffer, replacements: Replacement[]): Buffer {
  const replacer = new BaseUrlReplacer(replacements);
  const head = replacer.push(bytes);
  const rest = replacer.end();
  return rest.length === 0 ? head : Buffer.concat([head, rest]);
}

/** A header value (Location, Content-Location) with the upstream base replaced. */
export function rewriteText(text: string, replacements: Replacement[]): string {
  return rewriteBytes(Buffer.from(text), replacements).toString();
}
