import { BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import { normalizeIp } from '@nestjs/throttler';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';

import { DomainError, ErrorCode } from 'src/common/errors/domain-error';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';

import { generateApiKey, parseApiKey, secretMatches } from './api-key-format';
import { toPrincipal } from './api-key.view';
import type { ApiKeyPrincipal } from './api-keys.types';
import { ApiKey } from './entities/api-key.entity';
import { FailedKeyLimiter } from './failed-key-limiter';
import { VerifiedKey, VerifiedKeyCache } from './verified-key-cache';

/** `last_used_at` is written at most this often per key and instance. */
export const LAST_USED_INTERVAL_MS = 60_000;
/** Keys whose last write this instance remembers, before old ones are pruned. */
const LAST_USED_TRACKED = 10_000;

/**
 * The one answer to every refused key, whatever the reason (malformed, unknown, wrong secret,
 * revoked, expired), so a caller learns nothing about which keys exist.
 */
const REFUSED = 'The API key is not valid: it is malformed, unknown, revoked or expired.';

/** Compared against when no key was found, so a miss costs one comparison like a hit. */
const STAND_IN_HASH = generateApiKey().secretHash;

/** 429 for a client past the limit of refused keys, with the seconds until its window ends. */
const tooManyFailures = (retryAfterSeconds: number): DomainError =>
  new DomainError(
    ErrorCode.RateLimited,
    `Too many requests with an API key that is not valid came from this address. Try again in ${retryAfterSeconds} s.`,
    { retryAfterSeconds },
  );

/** Neither revoked nor expired at `now`. */
const usable = (key: VerifiedKey, now: number): boolean =>
  !key.revoked && (key.expiresAt === null || key.expiresAt > now);

const copy = (p: ApiKeyPrincipal): ApiKeyPrincipal => ({
  ...p,
  resourceTypes: p.resourceTypes ? [...p.resourceTypes] : null,
});

/**
 * Verifies presented API keys for the gateway (behind ApiKeysService.authenticate) and records
 * their use. Not exported: it is this module's hot path, kept apart from the management methods.
 */
@Injectable()
export class ApiKeyVerifier implements BeforeApplicationShutdown {
  private readonly logger = new Logger(ApiKeyVerifier.name);
  private readonly cache: VerifiedKeyCache;
  /** One database read per key at a time: a burst of requests with one key shares it. */
  private readonly lookups = new Map<string, Promise<ApiKey | null>>();
  /** Bumped whenever this instance forgets a key: a read that started before is not cached. */
  private epoch = 0;
  private readonly lastWrites = new Map<string, number>();
  private readonly pendingWrites = new Set<Promise<void>>();
  /** Refused keys per client: past API_KEY_FAILURE_LIMIT the client is turned away unread. */
  private readonly failures: FailedKeyLimiter;

  constructor(
    @InjectRepository(ApiKey) private readonly keys: Repository<ApiKey>,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.cache = new VerifiedKeyCache(config.env.API_KEY_CACHE_SECONDS * 1000);
    this.failures = new FailedKeyLimiter(
      config.env.API_KEY_FAILURE_LIMIT,
      config.env.API_KEY_FAILURE_WINDOW_SECONDS * 1000,
    );
  }

  /**
   * The principal of a presented key (`ecgk_<keyId>_<secret>`), or 401 UNAUTHENTICATED with one
   * generic message. A key's row is reused from memory for at most API_KEY_CACHE_SECONDS after it
   * was read (a revoked one too, marked so); an unknown key id is never remembered. Expiry is checked on every call.
   *
   * With `clientIp`, guesses are counted per client (an IPv6 address by its /64): malformed keys,
   * unknown key ids and wrong secrets, not the right secret of a revoked or expired key. A client
   * past API_KEY_FAILURE_LIMIT within the window gets 429 RATE_LIMITED with Retry-After for any key
   * this instance has not verified within API_KEY_CACHE_SECONDS, without a database read; a key it
   * has (right secret, still active) is served as usual.
   */
  async authenticate(presented: string, clientIp?: string): Promise<ApiKeyPrincipal> {
    const client = clientIp ? normalizeIp(clientIp) : undefined;
    const parsed = parseApiKey(presented);
    if (client !== undefined) {
      const wait = this.failures.blockedFor(client, Date.now());
      // A blocked client is still served a key this instance verified recently (no database cost),
      // so workers given a rotated key are not locked out by the ones still sending the old one.
      if (wait !== undefined) return this.fromMemoryOnly(parsed, () => tooManyFailures(wait));
    }
    // A malformed key is refused on its shape alone: no database read.
    if (!parsed) throw this.refused(client, true);
    const key = this.cache.get(parsed.keyId, Date.now()) ?? (await this.load(parsed.keyId));
    // Always one constant-time comparison, against a stand-in when there is no key.
    const matches = secretMatches(parsed.secret, key?.secretHash ?? STAND_IN_HASH);
    // Only guessing counts against the client (an unknown key id, a wrong secret): the authentic
    // secret of a revoked or expired key is a client not yet given its new key, not an attacker.
    if (!key || !matches) throw this.refused(client, true);
    if (!usable(key, Date.now())) throw this.refused(client, false);
    return copy(key.principal);
  }

  /** While the client is turned away: a usable key from memory with its secret, else `refusal()`. */
  private fromMemoryOnly(
    parsed: ReturnType<typeof parseApiKey>,
    refusal: () => DomainError,
  ): ApiKeyPrincipal {
    const key = parsed ? this.cache.get(parsed.keyId, Date.now()) : undefined;
    if (!parsed || !key || !secretMatches(parsed.secret, key.secretHash) || !usable(key, Date.now())) {
      throw refusal();
    }
    return copy(key.principal);
  }

  /**
   * Sets the key's `last_used_at`, at most once per LAST_USED_INTERVAL_MS on this instance, without
   * waiting for the write; a failed write is logged, never thrown.
   */
  recordUse(principal: ApiKeyPrincipal): void {
    try {
      const now = Date.now();
      const last = this.lastWrites.get(principal.keyId);
      if (last !== undefined && now - last < LAST_USED_INTERVAL_MS) return;
      this.lastWrites.set(principal.keyId, now);
      this.pruneLastWrites(now);
      const write: Promise<void> = this.keys
        .query(
          // Never moves backwards, should an older write from another instance land later.
          `UPDATE api_key SET last_used_at = $2
            WHERE key_id = $1 AND (last_used_at IS NULL OR last_used_at < $2)`,
          [principal.keyId, new Date(now)],
        )
        .then(
          () => undefined,
          (error: unknown) => this.warnUseNotRecorded(principal.keyId, error),
        )
        .finally(() => this.pendingWrites.delete(write));
      this.pendingWrites.add(write);
    } catch (error) {
      this.warnUseNotRecorded(principal?.keyId, error);
    }
  }

  /** Drops what this instance remembers of a key (revoked or changed here): the next use reads the row. */
  forget(keyId: string): void {
    this.epoch += 1;
    this.cache.delete(keyId);
    this.lookups.delete(keyId);
  }

  /**
   * Drops what this instance remembers of an organization's keys (it was deleted here): they are
   * refused at once. Reads under way are shared no longer and not cached (the epoch moves on).
   */
  forgetOrganization(organizationId: string): void {
    this.epoch += 1;
    this.cache.deleteOrganization(organizationId);
    this.lookups.clear();
  }

  /** Lets the `last_used_at` writes under way finish before the database closes. */
  async beforeApplicationShutdown(): Promise<void> {
    await Promise.allSettled([...this.pendingWrites]);
  }

  /**
   * Reads the key's row; an existing one is cached, expired or revoked or not (expiry is checked per
   * use; a revoked one is kept as such, so its holder's next requests are refused without a read).
   */
  private async load(keyId: string): Promise<VerifiedKey | undefined> {
    const readAt = Date.now();
    const epoch = this.epoch;
    const row = await this.lookup(keyId);
    if (!row) return undefined;
    const key: VerifiedKey = {
      principal: toPrincipal(row),
      secretHash: row.secretHash,
      expiresAt: row.expiresAt ? row.expiresAt.getTime() : null,
      revoked: Boolean(row.revokedAt),
    };
    // The TTL runs from before the read, so no entry outlives API_KEY_CACHE_SECONDS after it.
    if (epoch === this.epoch) this.cache.set(keyId, key, readAt);
    return key;
  }

  private lookup(keyId: string): Promise<ApiKey | null> {
    const running = this.lookups.get(keyId);
    if (running) return running;
    const read = this.keys.findOneBy({ keyId }).finally(() => {
      if (this.lookups.get(keyId) === read) this.lookups.delete(keyId);
    });
    this.lookups.set(keyId, read);
    return read;
  }

  /** The one refusal; a guess (`counted`) is counted against the client when it is known. */
  private refused(client: string | undefined, counted: boolean): DomainError {
    if (counted && client !== undefined && this.failures.recordFailure(client, Date.now())) {
      // Once per client and window. The address is what an admin needs to act (firewall, proxy).
      this.logger.warn(
        { client },
        'A client reached the limit of refused API keys: turned away until its window ends',
      );
    }
    return new DomainError(ErrorCode.Unauthenticated, REFUSED);
  }

  private pruneLastWrites(now: number): void {
    if (this.lastWrites.size <= LAST_USED_TRACKED) return;
    for (const [keyId, at] of this.lastWrites) {
      if (now - at >= LAST_USED_INTERVAL_MS) this.lastWrites.delete(keyId);
    }
  }

  private warnUseNotRecorded(keyId: string | undefined, error: unknown): void {
    this.logger.warn({ keyId, err: error }, 'Could not record the use of an API key');
  }
}
