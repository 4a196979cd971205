import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { CryptoKey } from 'jose';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';

import {
  SIGNING_ALGS,
  type AssertionSigningKey,
  type ClientKeyView,
  type PublicJwks,
  type RotationStepResult,
  type SigningAlg,
} from './client-keys.types';
import { ClientSigningKey } from './entities/client-signing-key.entity';
import { toPublicJwk } from './key-material';
import { jwksMaxAgeSeconds, RotationTiming, scheduledStep } from './rotation-plan';
import { SigningKeyStore } from './signing-key.store';

/** The rotation timing from the validated environment. */
export function rotationTiming(config: AppConfig): RotationTiming {
  return {
    overlapSeconds: config.env.KEY_ROTATION_OVERLAP_SECONDS,
    intervalDays: config.env.KEY_ROTATION_INTERVAL_DAYS,
  };
}

/**
 * How often each instance re-reads the published keys in the background, to see rotation steps
 * taken by other instances. Well inside the minimum overlap (300 s): a `next` key another instance
 * published is served here within this long, and Epic's cache (max-age at most half the overlap)
 * has it long before it signs.
 */
export const JWKS_REFRESH_MS = 30_000;

/** Published order: the signing keys first (naive verifiers try the first key), then next, then retiring. */
const STATE_ORDER: Record<string, number> = { active: 0, next: 1, retiring: 2 };

function toView(key: ClientSigningKey, sameAlg: ClientSigningKey[], timing: RotationTiming): ClientKeyView {
  const planned = scheduledStep(key, sameAlg, timing);
  return {
    id: key.id,
    kid: key.kid,
    alg: key.alg,
    state: key.state,
    createdAt: key.createdAt,
    activatedAt: key.activatedAt,
    retiringAt: key.retiringAt,
    retiredAt: key.retiredAt,
    nextStepAt: planned?.at ?? null,
    nextStep: planned?.step ?? null,
  };
}

/**
 * This service's own signing keys for private_key_jwt client assertions (RS384 and ES384, one
 * active of each) and their public JWK Set, which Epic fetches from `jwksUrl()`. The JWK Set is
 * served from memory: Epic may fetch it while one of our own token calls is in flight, and that
 * request must never wait for a database connection (the embedded database has one). It is loaded
 * at start-up, again after every key change made in this instance, and every JWKS_REFRESH_MS in the
 * background (stale-while-revalidate) for the changes made by other instances.
 * @see EPIC-SMART.md §3 (private_key_jwt, JWKS hosting)
 */
@Injectable()
export class ClientKeysService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ClientKeysService.name);
  /** Each algorithm's decrypted active key, by key id: a promoted or retired key simply stops being asked for. */
  private readonly decrypted = new Map<SigningAlg, { id: string; key: Promise<CryptoKey> }>();
  /** The JWK Set served; when, and in which order, the load that read it started. */
  private jwks: { value: PublicJwks; readAt: number; load: number } | null = null;
  private loadsStarted = 0;
  /** The background reload in flight (one at a time). */
  private backgroundLoad: Promise<unknown> | null = null;
  private jwksTimer?: NodeJS.Timeout;

  constructor(
    private readonly store: SigningKeyStore,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * First boot makes the keys; several instances starting at once take turns under the lock. Then
   * the JWK Set is loaded into memory and kept fresh in the background.
   */
  async onApplicationBootstrap(): Promise<void> {
    try {
      await this.ensureKeys();
      await this.reloadJwks();
    } catch (error) {
      // Not fatal: signingKey() and the JWK Set make them (and load it) on first use.
      this.logger.error({ err: error }, 'Signing keys could not be checked at start-up');
    }
    this.jwksTimer = setInterval(() => void this.reloadInBackground(), JWKS_REFRESH_MS);
    this.jwksTimer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.jwksTimer);
  }

  /** The active key of `alg`, to sign a client assertion now. Makes the keys if there are none yet. */
  async signingKey(alg: SigningAlg): Promise<AssertionSigningKey> {
    let row = await this.store.active(alg);
    if (!row) {
      if ((await this.ensureKeys()).length > 0) await this.reloadJwks();
      row = await this.store.active(alg);
    }
    if (!row) throw new Error(`No active ${alg} signing key`);
    return { kid: row.kid, alg: row.alg, key: await this.privateKeyOf(row) };
  }

  /**
   * The public JWK Set: `next`, `active` and `retiring` keys, public members only. From memory
   * once loaded: a request never waits for the database then. A copy older than JWKS_REFRESH_MS
   * is still served while a reload runs in the background. Only before the first load (the
   * database was down at start-up) does a request read the database.
   */
  async publicJwks(): Promise<PublicJwks> {
    const cached = this.jwks;
    if (!cached) return this.reloadJwks();
    if (Date.now() - cached.readAt > JWKS_REFRESH_MS) void this.reloadInBackground();
    return cached.value;
  }

  /**
   * Reads the published keys now and serves them from then on. Called after every key change made
   * in this instance (start-up, rotation steps), so the change is served at once. A load that
   * started earlier never replaces the result of one that started later.
   */
  async reloadJwks(): Promise<PublicJwks> {
    const load = ++this.loadsStarted;
    const readAt = Date.now();
    const value = await this.loadJwks();
    if (!this.jwks || this.jwks.load < load) this.jwks = { value, readAt, load };
    return value;
  }

  /** The periodic (and stale-triggered) reload: one at a time; a failure keeps serving what we have. */
  private reloadInBackground(): Promise<unknown> {
    this.backgroundLoad ??= this.reloadJwks()
      .catch((error: unknown) =>
        this.logger.warn({ err: error }, 'Could not reload the JWK Set; serving the last one read'),
      )
      .finally(() => {
        this.backgroundLoad = null;
      });
    return this.backgroundLoad;
  }

  private async loadJwks(): Promise<PublicJwks> {
    let rows = await this.store.published();
    if (SIGNING_ALGS.some((alg) => !rows.some((k) => k.alg === alg && k.state === 'active'))) {
      await this.ensureKeys();
      rows = await this.store.published();
    }
    rows.sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state]);
    // Rebuilt from the allow-list on the way out too: the stored JSON is not trusted to be public.
    return {
      keys: rows.map((k) => toPublicJwk(k.publicJwk as unknown as Record<string, unknown>, k.kid, k.alg)),
    };
  }

  /** The JWK Set URL to register at Epic (non-production and production deployments each have their own). */
  jwksUrl(): string {
    return `${this.config.publicBaseUrl}/.well-known/jwks.json`;
  }

  /** `Cache-Control` for the JWK Set: caches expire well inside the rotation overlap. */
  jwksCacheControl(): string {
    return `public, max-age=${jwksMaxAgeSeconds(this.config.env.KEY_ROTATION_OVERLAP_SECONDS)}`;
  }

  /** Every key in use and the last 10 retired ones, newest first, with the next automatic step of each. */
  async list(): Promise<ClientKeyView[]> {
    const rows = await this.store.forListing();
    const timing = rotationTiming(this.config);
    return rows.map((k) =>
      toView(
        k,
        rows.filter((o) => o.alg === k.alg),
        timing,
      ),
    );
  }

  /** Makes an active key for every algorithm that has none; returns the keys made. */
  private async ensureKeys(now = new Date()): Promise<RotationStepResult[]> {
    const created = await this.store.mutate((manager) => this.store.ensureActive(manager, now));
    for (const step of created) {
      this.logger.log({ kid: step.kid, alg: step.alg }, `Created the first ${step.alg} signing key`);
    }
    return created;
  }

  private privateKeyOf(row: ClientSigningKey): Promise<CryptoKey> {
    const cached = this.decrypted.get(row.alg);
    if (cached?.id === row.id) return cached.key;
    const key = this.store.privateKey(row);
    this.decrypted.set(row.alg, { id: row.id, key });
    // A failure is not cached: the next call tries again.
    key.catch(() => {
      if (this.decrypted.get(row.alg)?.key === key) this.decrypted.delete(row.alg);
    });
    return key;
  }
}
