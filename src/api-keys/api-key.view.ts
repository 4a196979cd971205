import { keyPrefix } from './api-key-format';
import type { ApiKeyPrincipal, ApiKeyState, ApiKeyView } from './api-keys.types';
import type { ApiKey } from './entities/api-key.entity';

/** Revoked wins over expired. Both have ended: neither works again, nor can be changed. */
export function apiKeyState(key: Pick<ApiKey, 'revokedAt' | 'expiresAt'>, now: Date): ApiKeyState {
  if (key.revokedAt) return 'revoked';
  if (key.expiresAt && key.expiresAt.getTime() <= now.getTime()) return 'expired';
  return 'active';
}

const iso = (date: Date | null): string | null => (date ? date.toISOString() : null);

/** What leaves the module about a key: never `secretHash`. */
export function toApiKeyView(key: ApiKey, now: Date): ApiKeyView {
  return {
    keyId: key.keyId,
    prefix: keyPrefix(key.keyId),
    organizationId: key.organizationId,
    name: key.name,
    access: key.access,
    resourceTypes: key.resourceTypes,
    userConnections: key.userConnections,
    state: apiKeyState(key, now),
    expiresAt: iso(key.expiresAt),
    revokedAt: iso(key.revokedAt),
    lastUsedAt: iso(key.lastUsedAt),
    createdBy: key.createdBy,
    createdAt: key.createdAt.toISOString(),
    updatedAt: key.updatedAt.toISOString(),
  };
}

/** What the gateway is told about a verified key. */
export function toPrincipal(key: ApiKey): ApiKeyPrincipal {
  return {
    keyId: key.keyId,
    organizationId: key.organizationId,
    name: key.name,
    access: key.access,
    resourceTypes: key.resourceTypes,
    userConnections: key.userConnections,
  };
}

/** The audit detail of a key: what it may do, never its secret or hash. */
export function auditDetail(key: ApiKey): Record<string, unknown> {
  return {
    keyId: key.keyId,
    name: key.name,
    access: key.access,
    resourceTypes: key.resourceTypes,
    userConnections: key.userConnections,
    expiresAt: iso(key.expiresAt),
  };
}
