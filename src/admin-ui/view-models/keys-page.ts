import {
  KEY_ENVIRONMENTS,
  type ClientKeyView,
  type KeyEnvironment,
  type KeyState,
} from 'src/client-keys/client-keys.types';
import type { FlashMessage } from 'src/common/flash';

import { formatUtc } from './connection-row';

export interface KeyBadge {
  /** Words first: the state must not be told by colour alone. */
  label: string;
  cssClass: 'info' | 'ok' | 'warn' | 'none';
  /** What the state means, for the badge's tooltip. */
  meaning: string;
}

const BADGES: Record<KeyState, KeyBadge> = {
  next: { label: 'Next', cssClass: 'info', meaning: 'Published, not signing yet' },
  active: { label: 'Active', cssClass: 'ok', meaning: 'Signs client assertions' },
  retiring: { label: 'Retiring', cssClass: 'warn', meaning: 'No longer signs; still published' },
  retired: { label: 'Retired', cssClass: 'none', meaning: 'Unpublished; private part wiped' },
};

export const keyBadge = (state: KeyState): KeyBadge => BADGES[state];

/** A date for a table cell: the readable UTC text, and the ISO value for `<time datetime>`. */
export interface When {
  text: string;
  iso: string | null;
}

export interface KeyRow {
  /** The full key id (RFC 7638 thumbprint); the page may shorten it visually, never in the HTML. */
  kid: string;
  alg: string;
  state: KeyState;
  badge: KeyBadge;
  created: When;
  activated: When;
  retiringSince: When;
  retired: When;
  /** "Promotes at …", "Retires at …", "Rotation due …", or a sentence when nothing is scheduled. */
  nextStep: string;
  /** "in 23 h", "due now" (the next scheduled run takes it), or "". */
  nextStepIn: string;
  nextStepAt: string | null;
}

export interface KeysPageSettings {
  /** Each environment's JWK Set URL. */
  jwksUrls: Record<KeyEnvironment, string>;
  overlapSeconds: number;
  /** 0: no automatic rotation. */
  intervalDays: number;
}

/** One environment's key set: its JWK Set URL, its keys, and its own "Start rotation". */
export interface KeySetSection {
  environment: KeyEnvironment;
  /** "Sandbox (non-production)", "Production". */
  name: string;
  /** "sandbox", "production": in sentences and the copy button's label. */
  word: string;
  /** The other set's word: its rotation does not touch that set. */
  otherWord: string;
  /** Which field of the Epic app the URL goes in. */
  epicField: string;
  jwksUrl: string;
  rows: KeyRow[];
  /** A rotation of this set is under way: its `next` keys and when they start signing. */
  pending: { alg: string; kid: string; signsFrom: string }[];
}

export interface KeysPage {
  title: string;
  /** "1 day", "5 minutes": KEY_ROTATION_OVERLAP_SECONDS in words. */
  overlap: string;
  /** "90 days": the age at which the active key is rotated by itself; null: only from this page. */
  interval: string | null;
  /** Sandbox first, then production. */
  sets: KeySetSection[];
}

const SET_NAMES: Record<KeyEnvironment, { name: string; word: string; epicField: string }> = {
  sandbox: { name: 'Sandbox (non-production)', word: 'sandbox', epicField: 'Non-Production JWK Set URL' },
  production: { name: 'Production', word: 'production', epicField: 'Production JWK Set URL' },
};

/** The set's name in a sentence ("sandbox", "production"), e.g. for the rotation messages. */
export const keySetWord = (environment: KeyEnvironment): string => SET_NAMES[environment].word;

const UNITS: [number, string][] = [
  [86_400, 'day'],
  [3_600, 'hour'],
  [60, 'minute'],
  [1, 'second'],
];

/** A duration in the largest whole unit: 86400 → "1 day", 5400 → "90 minutes". */
export function durationText(seconds: number): string {
  const [size, unit] = UNITS.find(([s]) => seconds >= s && seconds % s === 0) ?? [1, 'second'];
  const n = seconds / size;
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

/** How far `at` is from `now`, roughly: "in 45 min", "in 23 h", "in 12 days", or "due now". */
export function relativeText(at: Date, now: Date): string {
  const minutes = Math.ceil((at.getTime() - now.getTime()) / 60_000);
  if (minutes <= 0) return 'due now';
  if (minutes < 60) return `in ${minutes} min`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `in ${hours} h`;
  return `in ${Math.round(hours / 24)} days`;
}

const when = (date: Date | null): When => ({ text: formatUtc(date), iso: date ? date.toISOString() : null });

const shortKid = (kid: string): string => (kid.length > 12 ? `${kid.slice(0, 12)}…` : kid);

function nextStepText(key: ClientKeyView, all: readonly ClientKeyView[], intervalDays: number): string {
  const at = formatUtc(key.nextStepAt);
  switch (key.nextStep) {
    case 'promote':
      return `Promotes at ${at}`;
    case 'retire':
      return `Retires at ${at}`;
    case 'rotate':
      return `Rotation due ${at}`;
    case null:
      break;
  }
  switch (key.state) {
    case 'active': {
      // The plan gives an active key no step of its own while a next key waits: its end is that promotion.
      const next = all.find((k) => k.alg === key.alg && k.state === 'next');
      if (next?.nextStepAt) return `Stops signing at ${formatUtc(next.nextStepAt)}`;
      return intervalDays <= 0 ? 'No automatic rotation' : '—';
    }
    case 'next':
    case 'retiring':
    case 'retired':
      return '—';
  }
}

/** One environment's keys (`keys` are that environment's only). */
function keySetSection(
  environment: KeyEnvironment,
  keys: readonly ClientKeyView[],
  settings: KeysPageSettings,
  now: Date,
): KeySetSection {
  return {
    environment,
    ...SET_NAMES[environment],
    otherWord: SET_NAMES[environment === 'sandbox' ? 'production' : 'sandbox'].word,
    jwksUrl: settings.jwksUrls[environment],
    rows: keys.map((key) => ({
      kid: key.kid,
      alg: key.alg,
      state: key.state,
      badge: keyBadge(key.state),
      created: when(key.createdAt),
      activated: when(key.activatedAt),
      retiringSince: when(key.retiringAt),
      retired: when(key.retiredAt),
      nextStep: nextStepText(key, keys, settings.intervalDays),
      nextStepIn: key.nextStepAt ? relativeText(key.nextStepAt, now) : '',
      nextStepAt: key.nextStepAt ? key.nextStepAt.toISOString() : null,
    })),
    pending: keys
      .filter((k) => k.state === 'next')
      .map((k) => ({ alg: k.alg, kid: k.kid, signsFrom: formatUtc(k.nextStepAt) })),
  };
}

/**
 * The root admin's Signing keys page: pure, from the keys' views (never key material), one
 * section per environment's key set.
 */
export function keysPage(keys: readonly ClientKeyView[], settings: KeysPageSettings, now: Date): KeysPage {
  return {
    title: 'Signing keys',
    overlap: durationText(settings.overlapSeconds),
    interval:
      settings.intervalDays > 0
        ? `${settings.intervalDays} day${settings.intervalDays === 1 ? '' : 's'}`
        : null,
    sets: KEY_ENVIRONMENTS.map((environment) =>
      keySetSection(
        environment,
        keys.filter((k) => k.environment === environment),
        settings,
        now,
      ),
    ),
  };
}

/**
 * The messages after "Start rotation" of `environment`'s set: `next` are the `next` keys
 * `startRotation` returned, and `startedAt` the clock it was given, which is the creation time of
 * the keys that call made. A key created earlier means a rotation was already under way for that
 * algorithm (none is added).
 */
export function rotationFlashes(
  next: readonly ClientKeyView[],
  startedAt: Date,
  environment: KeyEnvironment,
): FlashMessage[] {
  const set = keySetWord(environment);
  const describe = (keys: readonly ClientKeyView[]): string =>
    keys.map((k) => `${k.alg} ${shortKid(k.kid)} (signs from ${formatUtc(k.nextStepAt)})`).join(', ');
  const made = next.filter((k) => k.createdAt.getTime() === startedAt.getTime());
  const earlier = next.filter((k) => k.createdAt.getTime() !== startedAt.getTime());
  const messages: FlashMessage[] = [];
  if (made.length > 0) {
    messages.push({
      level: 'success',
      text:
        `Published ${made.length === 1 ? `a new ${set} signing key` : `new ${set} signing keys`}: ${describe(made)}. ` +
        `${made.length === 1 ? 'It is' : 'They are'} in the ${set} JWK Set now; the current ${set} keys keep signing until then.`,
    });
  }
  if (earlier.length > 0) {
    messages.push({
      level: 'info',
      text: `A ${set} rotation is already under way, so no other key was made: ${describe(earlier)}.`,
    });
  }
  if (messages.length === 0) {
    messages.push({ level: 'warning', text: `No ${set} signing key was published. Try again.` });
  }
  return messages;
}
