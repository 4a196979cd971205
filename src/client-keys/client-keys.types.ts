import type { CryptoKey } from 'jose';

/** The algorithms SMART v2 confidential clients must support (EPIC-SMART.md §3). */
export const SIGNING_ALGS = ['RS384', 'ES384'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];

/**
 * A key's life: `next` (published, not yet signing) → `active` (signs) → `retiring` (published
 * so assertions it signed still verify) → `retired` (unpublished, private part wiped).
 */
export const KEY_STATES = ['next', 'active', 'retiring', 'retired'] as const;
export type KeyState = (typeof KEY_STATES)[number];

/** The key to sign a private_key_jwt client assertion with: put `kid` and `alg` in the JWT header. */
export interface AssertionSigningKey {
  kid: string;
  alg: SigningAlg;
  /** WebCrypto private key (not extractable), for jose's SignJWT. */
  key: CryptoKey;
}

/** A public JWK as published in the JWK Set: only public members, with kid, alg and use. */
export interface PublicJwk {
  kty: 'RSA' | 'EC';
  kid: string;
  alg: SigningAlg;
  use: 'sig';
  /** RSA */
  n?: string;
  e?: string;
  /** EC */
  crv?: string;
  x?: string;
  y?: string;
}

export interface PublicJwks {
  keys: PublicJwk[];
}

/** An automatic rotation step: `rotate` publishes a `next` key, `promote` makes it `active`, `retire` ends a `retiring` one. */
export type ScheduledStep = 'rotate' | 'promote' | 'retire';

/** What the console shows of a key (never key material). */
export interface ClientKeyView {
  id: string;
  kid: string;
  alg: SigningAlg;
  state: KeyState;
  createdAt: Date;
  activatedAt: Date | null;
  retiringAt: Date | null;
  retiredAt: Date | null;
  /** When the next automatic step for this key is due (null: none planned). */
  nextStepAt: Date | null;
  nextStep: ScheduledStep | null;
}

/**
 * One step a tick (or the admin action) took. `create` is the first key of an alg (none was
 * active); `rotate` published a `next` key; `promote` made `kid` active and `previousKid`
 * retiring; `retire` retired `kid`.
 */
export interface RotationStepResult {
  step: 'create' | ScheduledStep;
  alg: SigningAlg;
  kid: string;
  previousKid: string | null;
  at: Date;
}

/** Audit actions recorded by this module (AuditRecord.action), each with `kid` and `alg` in the detail. */
export const ClientKeyAuditAction = {
  Created: 'client-key.created',
  Published: 'client-key.published',
  Promoted: 'client-key.promoted',
  Retired: 'client-key.retired',
} as const;
export type ClientKeyAuditAction = (typeof ClientKeyAuditAction)[keyof typeof ClientKeyAuditAction];
