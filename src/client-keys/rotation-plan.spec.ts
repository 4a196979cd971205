import { jwksMaxAgeSeconds, nextRotationStep, PlanKey, RotationTiming, scheduledStep } from './rotation-plan';

const T0 = new Date('2026-01-01T00:00:00Z');
const at = (seconds: number): Date => new Date(T0.getTime() + seconds * 1000);
const DAY = 86_400;
const timing: RotationTiming = { overlapSeconds: 3600, intervalDays: 90 };

let seq = 0;
function key(state: PlanKey['state'], fields: Partial<PlanKey> = {}): PlanKey {
  seq += 1;
  return {
    id: `k${seq}`,
    alg: 'ES384',
    state,
    createdAt: T0,
    activatedAt: state === 'next' ? null : T0,
    retiringAt: null,
    ...fields,
  };
}

describe('nextRotationStep', () => {
  it('plans nothing for a young active key alone', () => {
    expect(nextRotationStep([key('active')], at(DAY), timing)).toBeNull();
  });

  it('starts a rotation once the active key is as old as the interval, not a second before', () => {
    const keys = [key('active')];
    expect(nextRotationStep(keys, at(90 * DAY - 1), timing)).toBeNull();
    expect(nextRotationStep(keys, at(90 * DAY), timing)).toEqual({ step: 'rotate' });
  });

  it('never starts a rotation by itself with an interval of 0', () => {
    expect(nextRotationStep([key('active')], at(3650 * DAY), { ...timing, intervalDays: 0 })).toBeNull();
  });

  it('does not start another rotation while a next key waits', () => {
    const keys = [key('active'), key('next', { createdAt: at(90 * DAY) })];
    expect(nextRotationStep(keys, at(90 * DAY + 10), timing)).toBeNull();
  });

  it('promotes a next key published for the overlap, with the active one as previous', () => {
    const active = key('active');
    const next = key('next', { createdAt: at(100) });
    expect(nextRotationStep([active, next], at(100 + 3599), timing)).toBeNull();
    expect(nextRotationStep([active, next], at(100 + 3600), timing)).toEqual({
      step: 'promote',
      keyId: next.id,
      previousKeyId: active.id,
    });
  });

  it('retires a retiring key after the overlap, before anything else', () => {
    const retiring = key('retiring', { retiringAt: at(50) });
    const active = key('active', { activatedAt: at(50) });
    const next = key('next', { createdAt: at(10) });
    expect(nextRotationStep([retiring, active], at(50 + 3599), timing)).toBeNull();
    expect(nextRotationStep([next, retiring, active], at(50 + 3600), timing)).toEqual({
      step: 'retire',
      keyId: retiring.id,
    });
  });

  it('retires the oldest retiring key first', () => {
    const older = key('retiring', { retiringAt: at(0) });
    const newer = key('retiring', { retiringAt: at(10) });
    expect(nextRotationStep([newer, older, key('active')], at(DAY), timing)).toEqual({
      step: 'retire',
      keyId: older.id,
    });
  });

  it('plans nothing without an active key (making the first one is not a rotation)', () => {
    expect(nextRotationStep([key('next', { createdAt: T0 })], at(DAY), timing)).toBeNull();
    expect(nextRotationStep([], at(DAY), timing)).toBeNull();
  });

  it('takes a whole overdue rotation one step at a time, and then stops', () => {
    // Overdue by far: the planner is asked again after each step, as the service does.
    let keys: PlanKey[] = [
      key('retiring', { retiringAt: T0 }),
      key('active'),
      key('next', { createdAt: T0 }),
    ];
    const now = at(10 * DAY);
    const steps: string[] = [];
    for (
      let planned = nextRotationStep(keys, now, timing);
      planned;
      planned = nextRotationStep(keys, now, timing)
    ) {
      steps.push(planned.step);
      if (planned.step === 'retire') {
        keys = keys.map((k) => (k.id === planned.keyId ? { ...k, state: 'retired' } : k));
      } else if (planned.step === 'promote') {
        const { keyId, previousKeyId } = planned;
        keys = keys.map((k) =>
          k.id === keyId
            ? { ...k, state: 'active', activatedAt: now }
            : k.id === previousKeyId
              ? { ...k, state: 'retiring', retiringAt: now }
              : k,
        );
      } else {
        keys = [...keys, key('next', { createdAt: now })];
      }
      expect(steps.length).toBeLessThan(10);
    }
    expect(steps).toEqual(['retire', 'promote']);
  });
});

describe('scheduledStep', () => {
  it('says when each key moves next', () => {
    const active = key('active', { activatedAt: at(100) });
    const next = key('next', { createdAt: at(200) });
    const retiring = key('retiring', { retiringAt: at(300) });
    const retired = key('retired');
    expect(scheduledStep(active, [active], timing)).toEqual({ step: 'rotate', at: at(100 + 90 * DAY) });
    expect(scheduledStep(active, [active, next], timing)).toBeNull();
    expect(scheduledStep(next, [active, next], timing)).toEqual({ step: 'promote', at: at(200 + 3600) });
    expect(scheduledStep(retiring, [retiring], timing)).toEqual({ step: 'retire', at: at(300 + 3600) });
    expect(scheduledStep(retired, [retired], timing)).toBeNull();
    expect(scheduledStep(active, [active], { ...timing, intervalDays: 0 })).toBeNull();
  });
});

describe('jwksMaxAgeSeconds', () => {
  it('is half the overlap, at most an hour', () => {
    expect(jwksMaxAgeSeconds(300)).toBe(150);
    expect(jwksMaxAgeSeconds(301)).toBe(150);
    expect(jwksMaxAgeSeconds(7199)).toBe(3599);
    expect(jwksMaxAgeSeconds(7200)).toBe(3600);
    expect(jwksMaxAgeSeconds(86_400)).toBe(3600);
  });
});
