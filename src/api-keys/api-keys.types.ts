/**
 * The public types of the ApiKeys module: what the FHIR gateway codes against
 * (`ApiKeyPrincipal`, from `ApiKeysService.authenticate`) and what the consoles and the JSON API
 * show of a key (`ApiKeyView`, never the secret or its hash).
 */

/** What a key may do through the gateway: FHIR reads only, or reads and writes. */
export const API_KEY_ACCESS = ['read', 'read_write'] as const;
export type ApiKeyAccess = (typeof API_KEY_ACCESS)[number];

/** A verified key, as the gateway sees the caller: one organization's service credential. */
export interface ApiKeyPrincipal {
  /** The public id (`ecgk_<keyId>` is the key's visible prefix). */
  keyId: string;
  organizationId: string;
  name: string;
  access: ApiKeyAccess;
  /** The FHIR resource types the key may touch; null: all. */
  resourceTypes: string[] | null;
  /** Whether the key may act with the organization's users' own (provider, patient) connections. */
  userConnections: boolean;
}

/**
 * `active` keys authenticate; `expired` ones passed their `expiresAt` and `revoked` ones were revoked:
 * both have ended, never work again and cannot be changed.
 */
export const API_KEY_STATES = ['active', 'expired', 'revoked'] as const;
export type ApiKeyState = (typeof API_KEY_STATES)[number];

/** What leaves the module about a key: never the secret, never its hash. Dates are ISO 8601. */
export interface ApiKeyView {
  keyId: string;
  /** `ecgk_<keyId>`: how the key starts, so an admin can tell which key a client holds. */
  prefix: string;
  organizationId: string;
  name: string;
  access: ApiKeyAccess;
  resourceTypes: string[] | null;
  userConnections: boolean;
  state: ApiKeyState;
  expiresAt: string | null;
  revokedAt: string | null;
  /** Written at most once a minute per key and instance, so up to a minute behind. */
  lastUsedAt: string | null;
  /** The user who created it (null once that user is deleted). */
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
}

/** `create`'s answer: the key, and the whole API key string, which is shown this once and never stored. */
export interface CreatedApiKey {
  key: ApiKeyView;
  /** `ecgk_<keyId>_<secret>`: what a client sends as `Authorization: Bearer …`. */
  secret: string;
}

/**
 * Audit actions recorded by this module, each with the key's `keyId`, `name`, `access`,
 * `resourceTypes`, `userConnections` and `expiresAt` in the detail (never the secret or hash).
 */
export const ApiKeyAuditAction = {
  Created: 'api-key.created',
  Updated: 'api-key.updated',
  Revoked: 'api-key.revoked',
} as const;
export type ApiKeyAuditAction = (typeof ApiKeyAuditAction)[keyof typeof ApiKeyAuditAction];
