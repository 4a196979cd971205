import type { ApiKeyPrincipal } from './api-keys.types';

/** A key whose row was read: enough to check a presented secret and answer without the database. */
export interface VerifiedKey {
  principal: ApiKeyPrincipal;
  /** SHA-256 hex of the secret: a presented secret is compared with it, also when cached. */
  secretHash: string;
  /** Epoch ms when the key expires (null: never), checked on every use. */
  expiresAt: number | null;
  /**
   * The key was revoked when its row was read. Kept so that its authentic holder (a worker not yet
   * given the new key) is refused without a database read per request, and without counting
   * against its address: a refusal of the right secret is not guessing.
   */
  revoked?: boolean;
}

/**
 * Keys read from the database, kept in this instance's memory for at most `ttlMs` after the read.
 * That bound is what makes a revocation on another instance take effect within seconds: a stale
 * entry is never served, and only keys that exist are kept (a miss is never remembered; a revoked
 * key is kept marked `revoked`, so its holder is refused without a read). `maxEntries` bounds the memory; the oldest read goes first.
 */
export class VerifiedKeyCache {
  private readonly entries = new Map<string, { key: VerifiedKey; until: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  get(keyId: string, now: number): VerifiedKey | undefined {
    const entry = this.entries.get(keyId);
    if (!entry) return undefined;
    if (now >= entry.until) {
      this.entries.delete(keyId);
      return undefined;
    }
    return entry.key;
  }

  /** Keeps `key` until `now + ttl` (not at all with a TTL of 0). */
  set(keyId: string, key: VerifiedKey, now: number): void {
    if (this.ttlMs <= 0) return;
    this.entries.delete(keyId); // re-inserted last: Map order is read order
    this.entries.set(keyId, { key, until: now + this.ttlMs });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  /** Forgets a key at once (it was revoked or changed on this instance). */
  delete(keyId: string): void {
    this.entries.delete(keyId);
  }

  /** Forgets every key of an organization at once (it was deleted on this instance); returns how many. */
  deleteOrganization(organizationId: string): number {
    let dropped = 0;
    for (const [keyId, entry] of this.entries) {
      if (entry.key.principal.organizationId === organizationId) {
        this.entries.delete(keyId);
        dropped += 1;
      }
    }
    return dropped;
  }

  get size(): number {
    return this.entries.size;
  }
}
