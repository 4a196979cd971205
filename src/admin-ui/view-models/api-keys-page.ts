import { plainToInstance } from 'class-transformer';

import { CreateApiKeyDto, UpdateApiKeyDto } from 'src/api-keys/dto/api-key.dto';
import type { ApiKeyState, ApiKeyView, CreatedApiKey } from 'src/api-keys/api-keys.types';
import type { FlashMessage } from 'src/common/flash';

import { formatUtc } from './connection-row';

/** What the create form holds, as typed (strings; the checkbox as a boolean). */
export interface ApiKeyForm {
  name: string;
  access: string;
  /** Comma- or space-separated FHIR resource types; blank: all. */
  resourceTypes: string;
  userConnections: boolean;
  /** `YYYY-MM-DD` (the key stops at 00:00 UTC that day); blank: never. */
  expiresAt: string;
}

/** The posted form, unchecked (a form body is whatever the browser, or anyone, sent). */
export type PostedApiKeyForm = Partial<Record<keyof ApiKeyForm, unknown>>;

export interface ApiKeyBadge {
  /** Words first: the state must not be told by colour alone. */
  label: string;
  cssClass: 'ok' | 'warn' | 'none';
  meaning: string;
}

const BADGES: Record<ApiKeyState, ApiKeyBadge> = {
  active: { label: 'Active', cssClass: 'ok', meaning: 'Accepted by the gateway' },
  expired: { label: 'Expired', cssClass: 'warn', meaning: 'Past its expiry date: refused' },
  revoked: { label: 'Revoked', cssClass: 'none', meaning: 'Refused for good' },
};

/** A date for a table cell: readable UTC text (or `fallback`), and the ISO value for `<time datetime>`. */
export interface When {
  text: string;
  iso: string | null;
}

export interface ApiKeyRow {
  keyId: string;
  /** `ecgk_<keyId>`: how the key starts. */
  prefix: string;
  name: string;
  state: ApiKeyState;
  badge: ApiKeyBadge;
  access: string;
  resourceTypes: string;
  userConnections: string;
  created: When;
  expires: When;
  lastUsed: When;
  revoked: When;
  canRevoke: boolean;
  /** The Edit form: active keys only (a revoked or expired key is not changed on this page). */
  edit: EditKeyForm | null;
}

/** One active key's Edit form (inside a `<details>`, opened when it comes back with messages). */
export interface EditKeyForm {
  /** `POST …/api-keys/:keyId/edit`. */
  action: string;
  /** What the fields' ids start with, unique on the page: `edit-<keyId>`. */
  idPrefix: string;
  form: ApiKeyForm;
  errors: Record<string, string>;
  hasErrors: boolean;
  /** Open when it shows messages. */
  open: boolean;
  accessOptions: Option[];
  /**
   * When the key now stops, if not at 00:00 UTC (set through the JSON API): the date field shows
   * the day only, and leaving that day as it is keeps the time.
   */
  expiryTime: string | null;
}

interface Option {
  value: string;
  label: string;
  selected: boolean;
}

/** The key just created: the whole key, shown on this one answer. */
export interface CreatedKeyPanel {
  name: string;
  prefix: string;
  secret: string;
}

export interface ApiKeysPage {
  title: string;
  org: { id: string; name: string };
  links: { organization: string; keys: string };
  rows: ApiKeyRow[];
  activeCount: number;
  form: ApiKeyForm;
  /** Messages by field name, shown beside the field. */
  errors: Record<string, string>;
  hasErrors: boolean;
  accessOptions: Option[];
  /** The earliest expiry the date field offers (tomorrow, UTC). */
  minExpiry: string;
  created: CreatedKeyPanel | null;
  /**
   * Where clients send their requests with a key (the FHIR gateway's base URL, gateway.ts). Null when
   * not given; the page then says only how to send the key.
   */
  gateway: { baseUrl: string } | null;
}

const ACCESS_LABELS: Record<string, string> = { read: 'Read', read_write: 'Read and write' };

const EMPTY_FORM: ApiKeyForm = {
  name: '',
  access: 'read',
  resourceTypes: '',
  userConnections: false,
  expiresAt: '',
};

const accessOptions = (access: string): Option[] =>
  Object.entries(ACCESS_LABELS).map(([value, label]) => ({ value, label, selected: value === access }));

/** `YYYY-MM-DD` (UTC) of an ISO date, as the date field shows it; blank for none. */
const dayOf = (iso: string | null): string => (iso ? new Date(iso).toISOString().slice(0, 10) : '');

/** The Edit form as it first shows: the key's current settings. */
export function editFormOf(key: ApiKeyView): ApiKeyForm {
  return {
    name: key.name,
    access: key.access,
    resourceTypes: key.resourceTypes ? key.resourceTypes.join(', ') : '',
    userConnections: key.userConnections,
    expiresAt: dayOf(key.expiresAt),
  };
}

function editKeyForm(
  key: ApiKeyView,
  links: { keys: string },
  posted?: { form: ApiKeyForm; errors: Record<string, string> },
): EditKeyForm {
  const form = posted?.form ?? editFormOf(key);
  const errors = posted?.errors ?? {};
  const hasErrors = Object.keys(errors).length > 0;
  const midnight = key.expiresAt === null || new Date(key.expiresAt).toISOString().endsWith('T00:00:00.000Z');
  return {
    action: `${links.keys}/${key.keyId}/edit`,
    idPrefix: `edit-${key.keyId}`,
    form,
    errors,
    hasErrors,
    open: hasErrors,
    accessOptions: accessOptions(form.access),
    expiryTime: midnight ? null : formatUtc(new Date(key.expiresAt!)),
  };
}

const when = (iso: string | null, fallback = '—'): When => ({
  text: iso ? formatUtc(new Date(iso)) : fallback,
  iso,
});

/**
 * One key as a table row (from its view: never a secret or hash), with its Edit form when it is
 * active (`posted`: the form as sent, with its messages).
 */
export function apiKeyRow(
  key: ApiKeyView,
  links: { keys: string } = { keys: `/admin/organizations/${key.organizationId}/api-keys` },
  posted?: { form: ApiKeyForm; errors: Record<string, string> },
): ApiKeyRow {
  return {
    keyId: key.keyId,
    prefix: key.prefix,
    name: key.name,
    state: key.state,
    badge: BADGES[key.state],
    access: ACCESS_LABELS[key.access] ?? key.access,
    resourceTypes: key.resourceTypes ? key.resourceTypes.join(', ') : 'All',
    userConnections: key.userConnections ? 'Yes' : 'No',
    created: when(key.createdAt),
    expires: when(key.expiresAt, 'Never'),
    lastUsed: when(key.lastUsedAt, 'Never'),
    revoked: when(key.revokedAt),
    canRevoke: key.state !== 'revoked',
    edit: key.state === 'active' ? editKeyForm(key, links, posted) : null,
  };
}

/** `YYYY-MM-DD` of the day after `now` (UTC). */
const tomorrow = (now: Date): string => new Date(now.getTime() + 86_400_000).toISOString().slice(0, 10);

/** The organization's keys page: pure, from the organization and its keys' views. */
export function apiKeysPage(
  org: { id: string; name: string },
  keys: readonly ApiKeyView[],
  options: {
    now: Date;
    form?: ApiKeyForm;
    errors?: Record<string, string>;
    created?: CreatedApiKey;
    gatewayBaseUrl?: string | null;
    /** An Edit form sent back with messages: the key, what was typed, the messages. */
    edit?: { keyId: string; form: ApiKeyForm; errors: Record<string, string> };
  },
): ApiKeysPage {
  const form = options.form ?? EMPTY_FORM;
  const errors = options.errors ?? {};
  const links = {
    organization: `/admin/organizations/${org.id}`,
    keys: `/admin/organizations/${org.id}/api-keys`,
  };
  const edit = options.edit;
  return {
    title: 'API keys',
    org: { id: org.id, name: org.name },
    links,
    rows: keys.map((key) => apiKeyRow(key, links, key.keyId === edit?.keyId ? edit : undefined)),
    activeCount: keys.filter((k) => k.state === 'active').length,
    form,
    errors,
    hasErrors: Object.keys(errors).length > 0,
    accessOptions: accessOptions(form.access),
    minExpiry: tomorrow(options.now),
    created: options.created
      ? { name: options.created.key.name, prefix: options.created.key.prefix, secret: options.created.secret }
      : null,
    gateway: options.gatewayBaseUrl ? { baseUrl: options.gatewayBaseUrl } : null,
  };
}

const str = (value: unknown): string => (typeof value === 'string' ? value.trim() : '');

/** A checkbox is on when it was posted with any value (browsers send `on`, or the field's value). */
const checked = (value: unknown): boolean => typeof value === 'string' && value !== '' && value !== 'false';

/** What was typed, to show the form again with its messages. */
export function submittedApiKeyForm(body: PostedApiKeyForm): ApiKeyForm {
  return {
    name: str(body.name),
    access: str(body.access),
    resourceTypes: str(body.resourceTypes),
    userConnections: checked(body.userConnections),
    expiresAt: str(body.expiresAt),
  };
}

/**
 * What the form asks ApiKeysService.create for: resource types split on commas and spaces (blank:
 * all), a blank expiry is none, and a date is 00:00 UTC of that day.
 */
export function createApiKeyDto(body: PostedApiKeyForm): CreateApiKeyDto {
  const form = submittedApiKeyForm(body);
  const types = form.resourceTypes.split(/[\s,]+/).filter(Boolean);
  return plainToInstance(CreateApiKeyDto, {
    name: form.name,
    access: form.access || undefined,
    resourceTypes: types.length > 0 ? types : undefined,
    userConnections: form.userConnections,
    expiresAt: form.expiresAt || undefined,
  });
}

/** The message after a revocation. */
export function revokedFlash(key: ApiKeyView, alreadyRevoked: boolean): FlashMessage {
  return alreadyRevoked
    ? { level: 'info', text: `The key ${key.prefix}… (${key.name}) was already revoked.` }
    : {
        level: 'success',
        text: `Revoked ${key.prefix}… (${key.name}). The gateway refuses it from now on (every instance within seconds).`,
      };
}

/**
 * What the Edit form asks ApiKeysService.update for. The form sends every field, so each is set:
 * blank resource types allow all (null) and a blank expiry is never (null). The date field shows
 * the day only, so the key's own day, unchanged, is left out: its time (set through the JSON API)
 * is kept rather than moved to 00:00 UTC.
 */
export function updateApiKeyDto(body: PostedApiKeyForm, current: ApiKeyView): UpdateApiKeyDto {
  const form = submittedApiKeyForm(body);
  const types = form.resourceTypes.split(/[\s,]+/).filter(Boolean);
  const sameDay = current.expiresAt !== null && form.expiresAt === dayOf(current.expiresAt);
  const resourceTypes = types.length > 0 ? types : null;
  // Left out when unchanged, as the expiry is: a key made before the R4 check with a type R4 does
  // not define can still be renamed.
  const sameTypes = sameSet(resourceTypes, current.resourceTypes);
  return plainToInstance(UpdateApiKeyDto, {
    name: form.name,
    access: form.access,
    resourceTypes: sameTypes ? undefined : resourceTypes,
    userConnections: form.userConnections,
    expiresAt: sameDay ? undefined : form.expiresAt || null,
  });
}

/** Both null, or the same names in any order. */
function sameSet(a: string[] | null, b: string[] | null): boolean {
  if (a === null || b === null) return a === b;
  const names = new Set(b);
  return a.length === b.length && new Set(a).size === names.size && a.every((name) => names.has(name));
}

const SETTINGS: [keyof ApiKeyView, string][] = [
  ['name', 'name'],
  ['access', 'access'],
  ['resourceTypes', 'resource types'],
  ['userConnections', "users' connections"],
  ['expiresAt', 'expiry'],
];

/** The message after an Edit: what changed, in words (the audit trail has the values). */
export function editedFlash(before: ApiKeyView, after: ApiKeyView): FlashMessage {
  const changed = SETTINGS.filter(
    ([field]) => JSON.stringify(before[field]) !== JSON.stringify(after[field]),
  ).map(([, label]) => label);
  return changed.length === 0
    ? { level: 'info', text: `Nothing changed on ${after.prefix}… (${after.name}).` }
    : {
        level: 'success',
        text: `Saved ${after.prefix}… (${after.name}): changed ${changed.join(', ')}. The gateway applies it at once here, and on every instance within seconds.`,
      };
}
