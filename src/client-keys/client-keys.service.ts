import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import type { CryptoKey } from 'jose';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';

import {
  SIGNING_ALGS,
  type AssertionSigningKey,
  type ClientKeyView,
  type PublicJwks,
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
 * active of each) and their public JWK Set, which Epic fetches from `jwksUrl()`.
 * @see EPIC-SMART.md §3 (private_key_jwt, JWKS hosting)
 */
@Injectable()
export class ClientKeysService implements OnApplicationBootstrap {
  private readonly logger = new Logger(ClientKeysService.name);
  /** Each algorithm's decrypted active key, by key id: a promoted or retired key simply stops being asked for. */
  private readonly decrypted = new Map<SigningAlg, { id: string; key: Promise<CryptoKey> }>();

  constructor(
    private readonly store: SigningKeyStore,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** First boot makes the keys; several instances starting at once take turns under the lock. */
  async onApplicationBootstrap(): Promise<void> {
    try {
      await this.ensureKeys();
    } catch (error) {
      // Not fatal: signingKey() and the JWK Set make them on first use.
      this.logger.error({ err: error }, 'Signing keys could not be checked at start-up');
    }
  }

  /** The active key of `alg`, to sign a client assertion now. Makes the keys if there are none yet. */
  async signingKey(alg: SigningAlg): Promise<AssertionSigningKey> {
    let row = await this.store.active(alg);
    if (!row) {
      await this.ensureKeys();
      row = await this.store.active(alg);
    }
    if (!row) throw new Error(`No active ${alg} signing key`);
    return { kid: row.kid, alg: row.alg, key: await this.privateKeyOf(row) };
  }

  /** The public JWK Set: `next`, `active` and `retiring` keys, public members only. */
  async publicJwks(): Promise<PublicJwks> {
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

  private async ensureKeys(now = new Date()): Promise<void> {
    const created = await this.store.mutate((manager) => this.store.ensureActive(manager, now));
    for (const step of created) {
      this.logger.log({ kid: step.kid, alg: step.alg }, `Created the first ${step.alg} signing key`);
    }
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
