import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { CryptoKey } from 'jose';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';

import {
  KEY_ENVIRONMENTS,
  SIGNING_ALGS,
  type AssertionSigningKey,
  type ClientKeyView,
  type KeyEnvironment,
  type PublicJwks,
  type PublicJwksByEnvironment,
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

/**
 * Where each environment's JWK Set is served, under PUBLIC_BASE_URL. Production keeps the path the
 * single key set had before there were two, so the URL registered at Epic for production
 * connections stays right; sandbox (non-production) has its own. One URL per set, no alias.
 */
export const JWKS_PATHS: Readonly<Record<KeyEnvironment, string>> = {
  production: '/.well-known/jwks.json',
  sandbox: '/.well-known/jwks-sandbox.json',
};

/** Published order: the signing keys first (naive verifiers try the first key), then next, then retiring. */
const STATE_ORDER: Record<string, number> = { active: 0, next: 1, retiring: 2 };

function toView(key: ClientSigningKey, sameAlg: ClientSigningKey[], timing: RotationTiming): ClientKeyView {
  const planned = scheduledStep(key, sameAlg, timing);
  return {
    id: key.id,
    environment: key.environment,
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
 * This service's own signing keys for private_key_jwt client assertions, in two sets: one for
 * organizations in the sandbox (non-production) environment and one for production ones, each with
 * one active RS384 and one active ES384 key and its own JWK Set, which Epic fetches from
 * `jwksUrl(environment)` (Epic asks for separate non-production and production JWK Set URLs:
 * https://fhir.epic.com/Documentation?docId=oauth2). Both JWK Sets are served from memory: Epic
 * may fetch one while one of our own token calls is in flight, and that request must never wait
 * for a database connection (the embedded database has one). They are loaded together at start-up,
 * again after every key change made in this instance, and every JWKS_REFRESH_MS in the background
 * (stale-while-revalidate) for the changes made by other instances.
 * @see src/client-keys/README.md
 */
@Injectable()
export class ClientKeysService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ClientKeysService.name);
  /**
   * Each environment's and algorithm's decrypted active key (by `environment/alg`), with its key
   * id: a promoted or retired key simply stops being asked for.
   */
  private readonly decrypted = new Map<string, { id: string; key: Promise<CryptoKey> }>();
  /** Both JWK Sets served; when, and in which order, the load that read them started. */
  private jwks: { value: PublicJwksByEnvironment; readAt: number; load: number } | null = null;
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

  /**
   * The active `alg` key of `environment`'s set (the organization's environment), to sign a client
   * assertion now: Epic verifies it with that environment's JWK Set only. Makes the keys if there
   * are none yet.
   */
  async signingKey(alg: SigningAlg, environment: KeyEnvironment): Promise<AssertionSigningKey> {
    let row = await this.store.active(environment, alg);
    if (!row) {
      if ((await this.ensureKeys()).length > 0) await this.reloadJwks();
      row = await this.store.active(environment, alg);
    }
    if (!row) throw new Error(`No active ${alg} signing key for ${environment}`);
    return { kid: row.kid, alg: row.alg, key: await this.privateKeyOf(row) };
  }

  /**
   * `environment`'s public JWK Set: its `next`, `active` and `retiring` keys, public members only,
   * never another environment's. From memory once loaded: a request never waits for the database
   * then. A copy older than JWKS_REFRESH_MS is still served while a reload runs in the background.
   * Only before the first load (the database was down at start-up) does a request read the database.
   */
  async publicJwks(environment: KeyEnvironment): Promise<PublicJwks> {
    const cached = this.jwks;
    if (!cached) return (await this.reloadJwks())[environment];
    if (Date.now() - cached.readAt > JWKS_REFRESH_MS) void this.reloadInBackground();
    return cached.value[environment];
  }

  /**
   * Reads the published keys of both environments now and serves them from then on. Called after
   * every key change made in this instance (start-up, rotation steps), so the change is served at
   * once. A load that started earlier never replaces the result of one that started later.
   */
  async reloadJwks(): Promise<PublicJwksByEnvironment> {
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

  private async loadJwks(): Promise<PublicJwksByEnvironment> {
    let rows = await this.store.published();
    const complete = (): boolean =>
      KEY_ENVIRONMENTS.every((environment) =>
        SIGNING_ALGS.every((alg) =>
          rows.some((k) => k.environment === environment && k.alg === alg && k.state === 'active'),
        ),
      );
    if (!complete()) {
      await this.ensureKeys();
      rows = await this.store.published();
    }
    rows.sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state]);
    // Rebuilt from the allow-list on the way out too: the stored JSON is not trusted to be public.
    const jwksOf = (environment: KeyEnvironment): PublicJwks => ({
      keys: rows
        .filter((k) => k.environment === environment)
        .map((k) => toPublicJwk(k.publicJwk as unknown as Record<string, unknown>, k.kid, k.alg)),
    });
    return { sandbox: jwksOf('sandbox'), production: jwksOf('production') };
  }

  /**
   * The JWK Set URL to register at Epic for the organizations of `environment`: the sandbox one
   * at the non-production client, the production one at the production client.
   */
  jwksUrl(environment: KeyEnvironment): string {
    return `${this.config.publicBaseUrl}${JWKS_PATHS[environment]}`;
  }

  /** `Cache-Control` for the JWK Set: caches expire well inside the rotation overlap. */
  jwksCacheControl(): string {
    return `public, max-age=${jwksMaxAgeSeconds(this.config.env.KEY_ROTATION_OVERLAP_SECONDS)}`;
  }

  /**
   * Every key in use and the last 10 retired ones of each environment (of `environment` only, when
   * given), newest first, with the next automatic step of each.
   */
  async list(environment?: KeyEnvironment): Promise<ClientKeyView[]> {
    const rows = (await this.store.forListing()).filter((k) => !environment || k.environment === environment);
    const timing = rotationTiming(this.config);
    return rows.map((k) =>
      toView(
        k,
        rows.filter((o) => o.environment === k.environment && o.alg === k.alg),
        timing,
      ),
    );
  }

  /** Makes an active key for every environment and algorithm that has none; returns the keys made. */
  private async ensureKeys(now = new Date()): Promise<RotationStepResult[]> {
    const created = await this.store.mutate((manager) => this.store.ensureActive(manager, now));
    for (const step of created) {
      this.logger.log(
        { kid: step.kid, alg: step.alg, environment: step.environment },
        `Created the first ${step.alg} signing key of the ${step.environment} set`,
      );
    }
    return created;
  }

  private privateKeyOf(row: ClientSigningKey): Promise<CryptoKey> {
    const slot = `${row.environment}/${row.alg}`;
    const cached = this.decrypted.get(slot);
    if (cached?.id === row.id) return cached.key;
    const key = this.store.privateKey(row);
    this.decrypted.set(slot, { id: row.id, key });
    // A failure is not cached: the next call tries again.
    key.catch(() => {
      if (this.decrypted.get(slot)?.key === key) this.decrypted.delete(slot);
    });
    return key;
  }
}
