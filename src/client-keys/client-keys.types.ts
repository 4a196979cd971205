import type { CryptoKey } from 'jose';

/**
 * The algorithms SMART's asymmetric client authentication names (RS384, ES384): one active key of
 * each per key set (https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html).
 */
export const SIGNING_ALGS = ['RS384', 'ES384'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];

/**
 * The key sets: one for organizations in the sandbox (non-production) environment, one for
 * production ones, each with its own JWK Set URL, as Epic asks
 * (https://fhir.epic.com/Documentation?docId=oauth2, "Hosting a JWK Set URL"). The values are the
 * organization's `epicEnvironment`.
 */
export const KEY_ENVIRONMENTS = ['sandbox', 'production'] as const;
export type KeyEnvironment = (typeof KEY_ENVIRONMENTS)[number];

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

/** Each environment's JWK Set (what the JWK Set URL of that environment publishes). */
export type PublicJwksByEnvironment = Record<KeyEnvironment, PublicJwks>;

/** An automatic rotation step: `rotate` publishes a `next` key, `promote` makes it `active`, `retire` ends a `retiring` one. */
export type ScheduledStep = 'rotate' | 'promote' | 'retire';

/** What the console shows of a key (never key material). */
export interface ClientKeyView {
  id: string;
  /** The key set it belongs to. */
  environment: KeyEnvironment;
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
 * One step a tick (or the admin action) took, in one environment's key set. `create` is the first
 * key of an alg there (none was active); `rotate` published a `next` key; `promote` made `kid` active and `previousKid`
 * retiring; `retire` retired `kid`.
 */
export interface RotationStepResult {
  step: 'create' | ScheduledStep;
  environment: KeyEnvironment;
  alg: SigningAlg;
  kid: string;
  previousKid: string | null;
  at: Date;
}

/** Audit actions recorded by this module (AuditRecord.action), each with `kid`, `alg` and `environment` in the detail. */
export const ClientKeyAuditAction = {
  Created: 'client-key.created',
  Published: 'client-key.published',
  Promoted: 'client-key.promoted',
  Retired: 'client-key.retired',
} as const;
export type ClientKeyAuditAction = (typeof ClientKeyAuditAction)[keyof typeof ClientKeyAuditAction];
