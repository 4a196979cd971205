/**
 * Paging links at the server's base (`[base]?_getpages=<id>&_getpagesoffset=…`, HAPI FHIR's layout)
 * for keys with a resource-type allow-list. Such a link names a search the server keeps, not its
 * types, so the gateway cannot check it as it checks `[base]/[type]?…`. Instead it remembers the ids
 * it passed on in the answers to each key's own (checked) searches, and lets that key, and no
 * other, follow them. The memory is per instance, bounded and short-lived: a miss (another instance,
 * an old or evicted link) is a 403 that says so. src/gateway/README.md, "Permissions".
 */

/** Parameters a paging link at the base carries besides `_getpages` (HAPI FHIR's); no other is allowed. */
const PAGING_PARAMS = new Set([
  '_getpages',
  '_getpagesoffset',
  '_count',
  '_bundletype',
  '_format',
  '_pretty',
]);

/** Characters of a `_getpages` id: unreserved ones and percent-escapes (RFC 3986 §2.3). */
const ID = /^[A-Za-z0-9\-._~%]{1,128}$/;

/**
 * The search id of a paging link at the base (`GET [base]?_getpages=<id>…` with paging parameters
 * only), or null for anything else.
 */
export function basePagingId(segments: string[], params: URLSearchParams): string | null {
  if (segments.length !== 0) return null;
  const ids = params.getAll('_getpages');
  if (ids.length !== 1 || !ID.test(ids[0])) return null;
  for (const name of params.keys()) if (!PAGING_PARAMS.has(name)) return null;
  return ids[0];
}

/** Characters of an id as found in an answer: up to the first byte that cannot be in it. */
const FOUND_ID = '([A-Za-z0-9\\-._~%]{1,128})';
/** Longest link lead matched: `"relation": "<code>", "url": "` (JSON) or its XML, whitespace included. */
const LINK_LEAD_MAX = 400;

/** The text as a regular expression, a `/` also matching JSON's escaped `\/`. */
const literal = (text: string): string =>
  text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replaceAll('/', '\\\\?/');

/**
 * Finds the `_getpages` ids of a Bundle's paging links in an answer fed in pieces (a match may be cut
 * across two), as the FHIR server sent it (before the gateway rewrites its base). Only a Bundle
 * `link` (a `url` right after a `relation`, JSON or XML) at the server's base
 * (`<upstream base>?_getpages=<id>`), and only before the first `entry`: links in the resources a
 * Bundle carries, or in any resource's text, are not the server's paging links and grant nothing.
 * An id that ends a piece is taken once the next piece (or the end) shows where it ends.
 */
export class PagingIdScanner {
  private carry = '';
  private done = false;
  private readonly found: RegExp;
  private readonly carryLength: number;

  constructor(upstreamBase: string) {
    const base = literal(upstreamBase.replace(/\/+$/, ''));
    const json = `"relation"\\s{0,40}:\\s{0,40}"[A-Za-z-]{1,20}"\\s{0,40},\\s{0,40}"url"\\s{0,40}:\\s{0,40}"`;
    const xml = `<relation\\s+value="[A-Za-z-]{1,20}"\\s{0,40}/>\\s{0,40}<url\\s+value="`;
    this.found = new RegExp(`(?:${json}|${xml})${base}/?\\?_getpages=${FOUND_ID}`, 'gi');
    this.carryLength = LINK_LEAD_MAX + 2 * upstreamBase.length + '/?_getpages='.length + 128;
  }

  /** The ids complete in what has come so far (some may be given again later: callers keep a set). */
  push(piece: Buffer): string[] {
    if (this.done) return [];
    let text = this.carry + piece.toString('latin1');
    const entry = ENTRY.exec(text);
    if (entry) {
      // The Bundle's own links come before its entries (FHIR's element order): stop there.
      text = text.slice(0, entry.index);
      this.done = true;
      this.carry = '';
      return this.ids(text, true);
    }
    this.carry = text.slice(-this.carryLength);
    return this.ids(text, false);
  }

  /** The ids that ended the answer. */
  end(): string[] {
    const text = this.carry;
    this.carry = '';
    this.done = true;
    return this.ids(text, true);
  }

  private ids(text: string, whole: boolean): string[] {
    return [...text.matchAll(this.found)]
      .filter((m) => whole || m.index + m[0].length < text.length)
      .map((m) => decoded(m[1]));
  }
}

/** Where a Bundle's entries begin, in JSON or XML. */
const ENTRY = /"entry"\s*:|<entry[\s>]/;

/** The id as a request's query gives it (decoded), so that the two compare. */
function decoded(id: string): string {
  try {
    return decodeURIComponent(id);
  } catch {
    return id;
  }
}

export interface PagingMemoryLimits {
  /** How long an id is remembered after it was last passed on. */
  ttlMs: number;
  /** Ids remembered across all keys; the least recently passed on are forgotten first. */
  maxEntries: number;
  /** Ids remembered per key; that key's least recently passed on are forgotten first. */
  maxPerKey: number;
}

/**
 * 30 minutes, 50,000 ids (a few MB), 1,000 per key: paging goes on while a client reads, not for
 * hours, and one key's flood of searches forgets its own oldest links, not the other keys' (it takes
 * 50 keys at their cap to fill the memory).
 */
export const PAGING_MEMORY_LIMITS: PagingMemoryLimits = {
  ttlMs: 30 * 60_000,
  maxEntries: 50_000,
  maxPerKey: 1_000,
};

/** Which `_getpages` ids the gateway passed on to which API key (by its public id), on this instance. */
export class PagingMemory {
  /** `<keyId> <id>` → when it is forgotten; in the order last passed on (Map keeps insertion order). */
  private readonly entries = new Map<string, number>();
  /** Per key, its ids in the order last passed on. */
  private readonly perKey = new Map<string, Set<string>>();

  constructor(
    private readonly limits: PagingMemoryLimits = PAGING_MEMORY_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  remember(keyId: string, id: string): void {
    this.forget(keyId, id);
    this.entries.set(`${keyId} ${id}`, this.now() + this.limits.ttlMs);
    const ids = this.perKey.get(keyId) ?? new Set<string>();
    this.perKey.set(keyId, ids);
    ids.add(id);
    if (ids.size > this.limits.maxPerKey) this.forget(keyId, ids.values().next().value!);
    while (this.entries.size > this.limits.maxEntries) {
      const oldest = this.entries.keys().next().value!;
      const space = oldest.indexOf(' ');
      this.forget(oldest.slice(0, space), oldest.slice(space + 1));
    }
  }

  knows(keyId: string, id: string): boolean {
    const until = this.entries.get(`${keyId} ${id}`);
    if (until === undefined) return false;
    if (until <= this.now()) {
      this.forget(keyId, id);
      return false;
    }
    return true;
  }

  private forget(keyId: string, id: string): void {
    this.entries.delete(`${keyId} ${id}`);
    const ids = this.perKey.get(keyId);
    if (!ids) return;
    ids.delete(id);
    if (ids.size === 0) this.perKey.delete(keyId);
  }
}
