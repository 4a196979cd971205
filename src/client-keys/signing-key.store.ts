import { randomUUID } from 'node:crypto';

import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { CryptoKey, JWK } from 'jose';
import { EntityManager, In, Repository, UpdateResult } from 'typeorm';

import { AuditActor, AuditService } from 'src/audit/audit.service';
import { SecretCipherService } from 'src/crypto/secret-cipher.service';
import { DbLockService } from 'src/database/db-lock.service';

import {
  ClientKeyAuditAction,
  KEY_ENVIRONMENTS,
  RotationStepResult,
  SIGNING_ALGS,
  type KeyEnvironment,
  type KeyState,
  type SigningAlg,
} from './client-keys.types';
import { ClientSigningKey } from './entities/client-signing-key.entity';
import { generateSigningKey, importPrivateKey } from './key-material';

/** Every change to the key sets (both environments) happens in a transaction holding this advisory lock. */
const KEYS_LOCK = 'client-signing-keys';
/** How many retired keys the console lists, per environment. */
const RETIRED_LISTED = 10;

/** Binds each ciphertext to its row, so a private key copied into another row fails to decrypt. */
const encryptionContext = (id: string): string => `client_signing_key:${id}`;

/** A step changes exactly the row it read under the lock; anything else rolls the transaction back. */
function expectOne(result: UpdateResult): void {
  if (result.affected !== 1) throw new Error('Signing key changed concurrently; the step was rolled back');
}

/**
 * Persistence and key material for the module's two services (not exported): every write runs
 * under one advisory lock in a transaction, and every step is audited in that transaction.
 */
@Injectable()
export class SigningKeyStore {
  constructor(
    @InjectRepository(ClientSigningKey) private readonly keys: Repository<ClientSigningKey>,
    private readonly cipher: SecretCipherService,
    private readonly locks: DbLockService,
    private readonly audit: AuditService,
  ) {}

  /** Runs `work` in a transaction holding the key-set lock: writers on every instance take turns. */
  mutate<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.locks.withLock(KEYS_LOCK, work);
  }

  active(environment: KeyEnvironment, alg: SigningAlg): Promise<ClientSigningKey | null> {
    return this.keys.findOneBy({ environment, alg, state: 'active' });
  }

  /** The keys in the JWK Sets, of both environments (one query): next, active and retiring. */
  published(): Promise<ClientSigningKey[]> {
    return this.keys.find({
      where: { state: In(['next', 'active', 'retiring'] satisfies KeyState[]) },
      order: { environment: 'ASC', alg: 'ASC', createdAt: 'DESC' },
    });
  }

  /** Every key still in use (not retired), of both environments, read in the caller's transaction. */
  current(manager: EntityManager): Promise<ClientSigningKey[]> {
    return manager.getRepository(ClientSigningKey).find({
      where: { state: In(['next', 'active', 'retiring'] satisfies KeyState[]) },
      order: { createdAt: 'ASC' },
    });
  }

  /** Keys in use plus the most recently retired ones of each environment, newest first. */
  async forListing(): Promise<ClientSigningKey[]> {
    const [current, ...retired] = await Promise.all([
      this.keys.find({ where: { state: In(['next', 'active', 'retiring'] satisfies KeyState[]) } }),
      ...KEY_ENVIRONMENTS.map((environment) =>
        this.keys.find({
          where: { environment, state: 'retired' },
          order: { retiredAt: 'DESC' },
          take: RETIRED_LISTED,
        }),
      ),
    ]);
    return [...current, ...retired.flat()].sort(
      (a, b) => b.createdAt.getTime() - a.createdAt.getTime() || a.alg.localeCompare(b.alg),
    );
  }

  /** Decrypts and imports a key's private part. */
  async privateKey(key: ClientSigningKey): Promise<CryptoKey> {
    if (!key.privateKeyEnc) throw new Error(`Signing key ${key.kid} has no private part (retired)`);
    const jwk = JSON.parse(this.cipher.decrypt(key.privateKeyEnc, encryptionContext(key.id))) as JWK;
    return importPrivateKey(jwk, key.alg);
  }

  /**
   * In the caller's locked transaction: makes an active key for every environment and algorithm
   * that has none (first boot, or the first start with a new environment's set), audited as
   * `client-key.created`.
   */
  async ensureActive(manager: EntityManager, now: Date): Promise<RotationStepResult[]> {
    const current = await this.current(manager);
    const results: RotationStepResult[] = [];
    for (const environment of KEY_ENVIRONMENTS) {
      for (const alg of SIGNING_ALGS) {
        const has = current.some(
          (k) => k.environment === environment && k.alg === alg && k.state === 'active',
        );
        if (has) continue;
        const key = await this.create(manager, environment, alg, 'active', now);
        await this.record(manager, null, ClientKeyAuditAction.Created, key);
        results.push({ step: 'create', environment, alg, kid: key.kid, previousKid: null, at: now });
      }
    }
    return results;
  }

  /**
   * Generates and stores a key of `environment`'s set in `state` (`next`, or `active` for an
   * algorithm's first key there).
   */
  async create(
    manager: EntityManager,
    environment: KeyEnvironment,
    alg: SigningAlg,
    state: 'next' | 'active',
    now: Date,
  ): Promise<ClientSigningKey> {
    const id = randomUUID();
    const material = await generateSigningKey(alg);
    const repo = manager.getRepository(ClientSigningKey);
    return repo.save(
      repo.create({
        id,
        kid: material.kid,
        environment,
        alg,
        state,
        publicJwk: material.publicJwk,
        privateKeyEnc: this.cipher.encrypt(JSON.stringify(material.privateJwk), encryptionContext(id)),
        createdAt: now,
        activatedAt: state === 'active' ? now : null,
        retiringAt: null,
        retiredAt: null,
      }),
    );
  }

  /** `next` → `active`, and the old active (same environment and algorithm) → `retiring`, in the caller's transaction. */
  async promote(
    manager: EntityManager,
    next: ClientSigningKey,
    previous: ClientSigningKey | null,
    now: Date,
  ): Promise<void> {
    const repo = manager.getRepository(ClientSigningKey);
    // The old one first: the partial unique index allows one active key per environment and algorithm.
    if (previous) {
      expectOne(
        await repo.update({ id: previous.id, state: 'active' }, { state: 'retiring', retiringAt: now }),
      );
    }
    expectOne(await repo.update({ id: next.id, state: 'next' }, { state: 'active', activatedAt: now }));
  }

  /** `retiring` → `retired`, wiping the private part: the key can never sign again. */
  async retire(manager: EntityManager, key: ClientSigningKey, now: Date): Promise<void> {
    expectOne(
      await manager
        .getRepository(ClientSigningKey)
        .update({ id: key.id, state: 'retiring' }, { state: 'retired', retiredAt: now, privateKeyEnc: null }),
    );
  }

  /** Audits a key step with its kid, alg and environment; `actor` null is the schedule (or first boot). */
  record(
    manager: EntityManager,
    actor: AuditActor | null,
    action: ClientKeyAuditAction,
    key: ClientSigningKey,
    detail: Record<string, unknown> = {},
  ): Promise<void> {
    return this.audit.record(
      { actor, action, detail: { kid: key.kid, alg: key.alg, environment: key.environment, ...detail } },
      manager,
    );
  }
}
