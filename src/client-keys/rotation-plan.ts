import type { KeyState, ScheduledStep, SigningAlg } from './client-keys.types';

/** What the plan needs to know of a key. */
export interface PlanKey {
  id: string;
  alg: SigningAlg;
  state: KeyState;
  createdAt: Date;
  activatedAt: Date | null;
  retiringAt: Date | null;
}

export interface RotationTiming {
  /** How long a new key is published before it signs, and an old one after it stopped (≥ 300 s). */
  overlapSeconds: number;
  /** Rotate automatically when the active key is this old; 0: never automatically. */
  intervalDays: number;
}

/** A step due now for one algorithm; `keyId` is the key it acts on (none for `rotate`: it makes one). */
export type PlannedStep =
  | { step: 'retire'; keyId: string }
  | { step: 'promote'; keyId: string; previousKeyId: string | null }
  | { step: 'rotate' };

const DAY_MS = 86_400_000;

const plus = (date: Date, ms: number): Date => new Date(date.getTime() + ms);

/**
 * When `key`'s next automatic step is due, given the other keys of its algorithm (`sameAlg`):
 * a `next` key is promoted `overlap` after it was published; a `retiring` key is retired
 * `overlap` after it stopped signing; an `active` key without a `next` one is rotated
 * `intervalDays` after it started signing (never with 0). Null: nothing planned.
 */
export function scheduledStep(
  key: PlanKey,
  sameAlg: readonly PlanKey[],
  timing: RotationTiming,
): { step: ScheduledStep; at: Date } | null {
  const overlapMs = timing.overlapSeconds * 1000;
  switch (key.state) {
    case 'next':
      return { step: 'promote', at: plus(key.createdAt, overlapMs) };
    case 'retiring':
      return { step: 'retire', at: plus(key.retiringAt ?? key.createdAt, overlapMs) };
    case 'active': {
      if (timing.intervalDays <= 0) return null;
      if (sameAlg.some((k) => k.state === 'next' && k.alg === key.alg)) return null;
      return { step: 'rotate', at: plus(key.activatedAt ?? key.createdAt, timing.intervalDays * DAY_MS) };
    }
    case 'retired':
      return null;
  }
}

/**
 * The first step due at `now` for one algorithm's keys, or null when none is. Apply it and ask
 * again until null: retiring keys past the overlap go first, then a `next` key published for the
 * overlap is promoted (the active one becomes retiring), then a new `next` key is published when
 * the active one is older than the interval. Nothing is planned without an active key: creating
 * one is not a rotation.
 */
export function nextRotationStep(
  keys: readonly PlanKey[],
  now: Date,
  timing: RotationTiming,
): PlannedStep | null {
  const active = keys.find((k) => k.state === 'active');
  if (!active) return null;
  const due = (key: PlanKey): boolean => {
    const planned = scheduledStep(key, keys, timing);
    return planned !== null && planned.at.getTime() <= now.getTime();
  };
  const retiring = keys
    .filter((k) => k.state === 'retiring' && due(k))
    .sort((a, b) => (a.retiringAt?.getTime() ?? 0) - (b.retiringAt?.getTime() ?? 0));
  if (retiring.length > 0) return { step: 'retire', keyId: retiring[0].id };
  const next = keys.find((k) => k.state === 'next');
  if (next && due(next)) return { step: 'promote', keyId: next.id, previousKeyId: active.id };
  if (!next && due(active)) return { step: 'rotate' };
  return null;
}

/**
 * `max-age` for the published JWK Set: short enough that any cache (Epic keeps one for up to 29 h
 * unless told otherwise) sees a new key well before it starts signing, and sees an old one gone
 * soon after: half the overlap, at most an hour.
 */
export function jwksMaxAgeSeconds(overlapSeconds: number): number {
  return Math.max(0, Math.min(3600, Math.floor(overlapSeconds / 2)));
}
