import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { CronJob } from 'cron';
import { EntityManager } from 'typeorm';

import { AuditActor } from 'src/audit/audit.service';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { DbLockService } from 'src/database/db-lock.service';
import { UsersService } from 'src/users/users.service';

import { ClientKeysService, rotationTiming } from './client-keys.service';
import {
  ClientKeyAuditAction,
  KEY_ENVIRONMENTS,
  SIGNING_ALGS,
  type ClientKeyView,
  type KeyEnvironment,
  type RotationStepResult,
  type SigningAlg,
} from './client-keys.types';
import { nextRotationStep, RotationTiming } from './rotation-plan';
import { SigningKeyStore } from './signing-key.store';

export const KEY_ROTATION_JOB = 'key-rotation';
/** More steps than one algorithm of one set can have due at once; a guard against a planning bug looping. */
const MAX_STEPS_PER_ALG = 10;

/**
 * Rotates the signing keys: publish a `next` key, promote it after the overlap (the old one
 * becomes `retiring`), retire the old one after another overlap. Each environment's set (sandbox,
 * production) rotates on its own, on the same schedule: a step in one never touches the other.
 * Runs on KEY_ROTATION_CRON on one instance at a time (CRON_ENABLED=false turns it off), and on
 * demand from the console, one set at a time. The clock is a parameter.
 * @see src/client-keys/README.md
 */
@Injectable()
export class KeyRotationService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(KeyRotationService.name);
  private job?: CronJob;
  private readonly timing: RotationTiming;

  constructor(
    private readonly store: SigningKeyStore,
    private readonly clientKeys: ClientKeysService,
    private readonly users: UsersService,
    private readonly locks: DbLockService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.timing = rotationTiming(config);
  }

  onApplicationBootstrap(): void {
    if (!this.config.env.CRON_ENABLED) return;
    this.job = CronJob.from({
      cronTime: this.config.env.KEY_ROTATION_CRON,
      timeZone: 'UTC',
      onTick: () => void this.tick(),
      start: true,
    });
    this.logger.log(
      { cron: this.config.env.KEY_ROTATION_CRON },
      `Signing key rotation scheduled (${this.config.env.KEY_ROTATION_CRON}, UTC)`,
    );
  }

  onApplicationShutdown(): void {
    void this.job?.stop();
  }

  /**
   * One scheduled run at `now`: makes missing keys, then takes every step that is due in each
   * environment's set (retire, promote, and start a rotation when the active key is older than
   * KEY_ROTATION_INTERVAL_DAYS).
   * Returns the steps taken, or null when another instance (or a tick still running here) has it.
   * Never rejects: a failure is logged and the next tick tries again.
   */
  async tick(now = new Date()): Promise<RotationStepResult[] | null> {
    let results: RotationStepResult[] | null = null;
    try {
      await this.locks.tryRunExclusive(`scheduled:${KEY_ROTATION_JOB}`, async () => {
        const steps = await this.store.mutate((manager) => this.applyDueSteps(manager, now));
        this.logSteps(steps);
        results = steps;
        await this.publish(steps);
      });
    } catch (error) {
      this.logger.error({ err: error }, 'Signing key rotation could not run');
    }
    return results;
  }

  /**
   * The console's "rotate now" for one environment's set: publishes a `next` key for each of its
   * algorithms that has none (it is promoted by the schedule once published for the overlap). The
   * other set is not touched. Audited with the user as actor. Returns that set's `next` keys.
   */
  async startRotation(
    actorUserId: string | null,
    environment: KeyEnvironment,
    now = new Date(),
  ): Promise<ClientKeyView[]> {
    const actor: AuditActor | null = actorUserId
      ? { id: actorUserId, email: (await this.users.getView(actorUserId)).email }
      : null;
    const steps = await this.store.mutate(async (manager) => {
      const taken = await this.store.ensureActive(manager, now);
      const current = await this.store.current(manager);
      for (const alg of SIGNING_ALGS) {
        if (current.some((k) => k.environment === environment && k.alg === alg && k.state === 'next')) {
          continue;
        }
        taken.push(await this.publishNext(manager, environment, alg, now, actor));
      }
      return taken;
    });
    this.logSteps(steps);
    await this.publish(steps);
    return (await this.clientKeys.list(environment)).filter((k) => k.state === 'next');
  }

  /** In the locked transaction: every step due at `now` in each set, each audited (actor: the schedule). */
  private async applyDueSteps(manager: EntityManager, now: Date): Promise<RotationStepResult[]> {
    const results = await this.store.ensureActive(manager, now);
    for (const environment of KEY_ENVIRONMENTS) {
      for (const alg of SIGNING_ALGS) {
        results.push(...(await this.applyDueStepsOf(manager, environment, alg, now)));
      }
    }
    return results;
  }

  /** The steps due for one environment's keys of one algorithm: the plan sees no other key. */
  private async applyDueStepsOf(
    manager: EntityManager,
    environment: KeyEnvironment,
    alg: SigningAlg,
    now: Date,
  ): Promise<RotationStepResult[]> {
    const results: RotationStepResult[] = [];
    for (let i = 0; i < MAX_STEPS_PER_ALG; i++) {
      const keys = (await this.store.current(manager)).filter(
        (k) => k.environment === environment && k.alg === alg,
      );
      const planned = nextRotationStep(keys, now, this.timing);
      if (!planned) break;
      switch (planned.step) {
        case 'retire': {
          const key = keys.find((k) => k.id === planned.keyId)!;
          await this.store.retire(manager, key, now);
          await this.store.record(manager, null, ClientKeyAuditAction.Retired, key);
          results.push({ step: 'retire', environment, alg, kid: key.kid, previousKid: null, at: now });
          break;
        }
        case 'promote': {
          const next = keys.find((k) => k.id === planned.keyId)!;
          const previous = keys.find((k) => k.id === planned.previousKeyId) ?? null;
          await this.store.promote(manager, next, previous, now);
          await this.store.record(manager, null, ClientKeyAuditAction.Promoted, next, {
            previousKid: previous?.kid ?? null,
          });
          results.push({
            step: 'promote',
            environment,
            alg,
            kid: next.kid,
            previousKid: previous?.kid ?? null,
            at: now,
          });
          break;
        }
        case 'rotate':
          results.push(await this.publishNext(manager, environment, alg, now, null, 'schedule'));
          break;
      }
    }
    return results;
  }

  private async publishNext(
    manager: EntityManager,
    environment: KeyEnvironment,
    alg: SigningAlg,
    now: Date,
    actor: AuditActor | null,
    reason: 'schedule' | 'admin' = 'admin',
  ): Promise<RotationStepResult> {
    const key = await this.store.create(manager, environment, alg, 'next', now);
    await this.store.record(manager, actor, ClientKeyAuditAction.Published, key, {
      reason,
      promoteAfter: new Date(now.getTime() + this.timing.overlapSeconds * 1000).toISOString(),
    });
    return { step: 'rotate', environment, alg, kid: key.kid, previousKid: null, at: now };
  }

  /**
   * After committed steps: this instance serves the new JWK Set at once (it is served from memory;
   * other instances see it within JWKS_REFRESH_MS). A failed reload is not the step's failure: the
   * background reload catches up.
   */
  private async publish(steps: RotationStepResult[]): Promise<void> {
    if (steps.length === 0) return;
    try {
      await this.clientKeys.reloadJwks();
    } catch (error) {
      this.logger.warn({ err: error }, 'Could not reload the JWK Set after a rotation step');
    }
  }

  private logSteps(steps: RotationStepResult[]): void {
    for (const s of steps) {
      this.logger.log(
        { step: s.step, kid: s.kid, alg: s.alg, environment: s.environment },
        `Signing key ${s.step}: ${s.environment} ${s.alg} ${s.kid}`,
      );
    }
  }
}
