import { KEY_STATES, type ClientKeyView } from 'src/client-keys/client-keys.types';

import { durationText, keyBadge, keysPage, relativeText, rotationFlashes } from './keys-page';

const NOW = new Date('2026-03-01T12:00:00.000Z');
const HOUR = 3_600_000;
const at = (hours: number): Date => new Date(NOW.getTime() + hours * HOUR);
const settings = {
  jwksUrls: {
    sandbox: 'https://connect.example/.well-known/jwks-sandbox.json',
    production: 'https://connect.example/.well-known/jwks.json',
  },
  overlapSeconds: 86_400,
  intervalDays: 90,
};

function key(overrides: Partial<ClientKeyView>): ClientKeyView {
  return {
    id: 'id',
    environment: 'production',
    kid: 'kid-' + Math.random().toString(36).slice(2).padEnd(40, 'x'),
    alg: 'RS384',
    state: 'active',
    createdAt: at(-100),
    activatedAt: at(-100),
    retiringAt: null,
    retiredAt: null,
    nextStepAt: null,
    nextStep: null,
    ...overrides,
  };
}

describe('keys page', () => {
  it('gives every state a badge with words, not only a colour', () => {
    for (const state of KEY_STATES) expect(keyBadge(state).label).toMatch(/^[A-Z][a-z]{3,}$/);
    expect(KEY_STATES.map((s) => keyBadge(s).label)).toEqual(['Next', 'Active', 'Retiring', 'Retired']);
  });

  it('says when each key takes its next automatic step, and how soon', () => {
    const next = key({ state: 'next', activatedAt: null, nextStep: 'promote', nextStepAt: at(23) });
    const active = key({ nextStep: 'rotate', nextStepAt: at(24 * 30), alg: 'ES384' });
    const retiring = key({
      state: 'retiring',
      retiringAt: at(-2),
      nextStep: 'retire',
      nextStepAt: at(-0.01),
    });
    const retired = key({ state: 'retired', retiringAt: at(-50), retiredAt: at(-26) });
    const page = keysPage([next, active, retiring, retired], settings, NOW).sets[1];

    expect(page.rows.map((r) => [r.badge.label, r.nextStep, r.nextStepIn])).toEqual([
      ['Next', 'Promotes at 2026-03-02 11:00 UTC', 'in 23 h'],
      ['Active', 'Rotation due 2026-03-31 12:00 UTC', 'in 30 days'],
      ['Retiring', 'Retires at 2026-03-01 11:59 UTC', 'due now'],
      ['Retired', '—', ''],
    ]);
    expect(page.rows[3]).toMatchObject({
      kid: retired.kid,
      created: { text: '2026-02-25 08:00 UTC', iso: '2026-02-25T08:00:00.000Z' },
      retiringSince: { text: '2026-02-27 10:00 UTC' },
      retired: { text: '2026-02-28 10:00 UTC' },
    });
    expect(page.rows[0].activated).toEqual({ text: '—', iso: null });
    expect(page).toMatchObject({ environment: 'production', jwksUrl: settings.jwksUrls.production });
    expect(keysPage([], settings, NOW)).toMatchObject({ overlap: '1 day', interval: '90 days' });
  });

  it('shows each environment’s set apart: its URL, its keys, its rotation under way', () => {
    const production = key({ kid: 'production-active' });
    const sandboxNext = key({
      environment: 'sandbox',
      kid: 'sandbox-next',
      state: 'next',
      activatedAt: null,
      nextStep: 'promote',
      nextStepAt: at(5),
    });
    const sandboxActive = key({ environment: 'sandbox', kid: 'sandbox-active' });
    const page = keysPage([production, sandboxNext, sandboxActive], settings, NOW);
    expect(page.sets.map((s) => [s.environment, s.name, s.jwksUrl, s.rows.map((r) => r.kid)])).toEqual([
      ['sandbox', 'Sandbox (non-production)', settings.jwksUrls.sandbox, ['sandbox-next', 'sandbox-active']],
      ['production', 'Production', settings.jwksUrls.production, ['production-active']],
    ]);
    expect(page.sets[0].epicField).toBe('Non-Production JWK Set URL');
    expect(page.sets[1].epicField).toBe('Production JWK Set URL');
    // The sandbox's next key ends the sandbox active key only; production's has its own rotation.
    expect(page.sets[0].rows[1].nextStep).toBe('Stops signing at 2026-03-01 17:00 UTC');
    expect(page.sets[1].rows[0].nextStep).toBe('—');
    expect(page.sets[0].pending).toEqual([
      { alg: 'RS384', kid: 'sandbox-next', signsFrom: '2026-03-01 17:00 UTC' },
    ]);
    expect(page.sets[1].pending).toEqual([]);
  });

  it('shows when an active key stops signing while a next key waits, and lists the rotation under way', () => {
    const next = key({ state: 'next', kid: 'next-kid', nextStep: 'promote', nextStepAt: at(5) });
    const active = key({ nextStep: null });
    const otherAlg = key({ alg: 'ES384', nextStep: null });
    const whole = keysPage([next, active, otherAlg], { ...settings, intervalDays: 0 }, NOW);
    const page = whole.sets[1];
    expect(page.rows[1].nextStep).toBe('Stops signing at 2026-03-01 17:00 UTC');
    expect(page.rows[2].nextStep).toBe('No automatic rotation');
    expect(whole.interval).toBeNull();
    expect(page.pending).toEqual([{ alg: 'RS384', kid: 'next-kid', signsFrom: '2026-03-01 17:00 UTC' }]);
  });

  it('never carries more than the view gives (no key material to leak)', () => {
    const page = keysPage([key({})], settings, NOW).sets[1];
    expect(Object.keys(page.rows[0]).sort()).toEqual(
      [
        'kid',
        'alg',
        'state',
        'badge',
        'created',
        'activated',
        'retiringSince',
        'retired',
        'nextStep',
        'nextStepIn',
        'nextStepAt',
      ].sort(),
    );
  });

  it('writes durations in the largest whole unit and times relative to now', () => {
    expect([86_400, 172_800, 3_600, 5_400, 300, 61].map(durationText)).toEqual([
      '1 day',
      '2 days',
      '1 hour',
      '90 minutes',
      '5 minutes',
      '61 seconds',
    ]);
    expect(relativeText(at(0.5), NOW)).toBe('in 30 min');
    expect(relativeText(at(47), NOW)).toBe('in 47 h');
    expect(relativeText(at(72), NOW)).toBe('in 3 days');
    expect(relativeText(NOW, NOW)).toBe('due now');
  });
});

describe('rotation flashes', () => {
  const next = (alg: 'RS384' | 'ES384', createdAt: Date): ClientKeyView =>
    key({
      alg,
      kid: `${alg}-abcdefghijklmnopqrstuvwxyz`,
      state: 'next',
      createdAt,
      activatedAt: null,
      nextStep: 'promote',
      nextStepAt: new Date(createdAt.getTime() + 24 * HOUR),
    });

  it('names the keys published and when they start signing', () => {
    const flashes = rotationFlashes([next('RS384', NOW), next('ES384', NOW)], NOW, 'production');
    expect(flashes).toEqual([
      {
        level: 'success',
        text:
          'Published new production signing keys: RS384 RS384-abcdef… (signs from 2026-03-02 12:00 UTC), ' +
          'ES384 ES384-abcdef… (signs from 2026-03-02 12:00 UTC). ' +
          'They are in the production JWK Set now; the current production keys keep signing until then.',
      },
    ]);
  });

  it('says a rotation was already under way when the next keys are older than this request', () => {
    const flashes = rotationFlashes([next('RS384', at(-1)), next('ES384', NOW)], NOW, 'sandbox');
    expect(flashes.map((f) => f.level)).toEqual(['success', 'info']);
    expect(flashes[0].text).toMatch(
      /^Published a new sandbox signing key: ES384 .*It is in the sandbox JWK Set now/,
    );
    expect(flashes[1].text).toBe(
      'A sandbox rotation is already under way, so no other key was made: RS384 RS384-abcdef… (signs from 2026-03-02 11:00 UTC).',
    );
  });

  it('warns when nothing came back', () => {
    expect(rotationFlashes([], NOW, 'sandbox')).toEqual([
      { level: 'warning', text: 'No sandbox signing key was published. Try again.' },
    ]);
  });
});
