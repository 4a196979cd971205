import { randomUUID } from 'node:crypto';

import TestAgent from 'supertest/lib/agent';

import type { CreatedApiKey } from 'src/api-keys/api-keys.types';

/** An organization and a signed-in user who manages its keys (an org admin or a root admin). */
export interface KeyOwner {
  orgId: string;
  admin: { agent: TestAgent; csrf: string };
}

/** What a key may do (CreateApiKeyDto); the name is unique unless given. */
export interface ApiKeyRequest {
  name?: string;
  access?: 'read' | 'read_write';
  resourceTypes?: string[];
  userConnections?: boolean;
  expiresAt?: string;
}

/** Creates an API key through the JSON API (a read key unless said otherwise): `{ key, secret }`. */
export async function createApiKey(owner: KeyOwner, body: ApiKeyRequest = {}): Promise<CreatedApiKey> {
  const res = await owner.admin.agent
    .post(`/api/organizations/${owner.orgId}/api-keys`)
    .set('x-csrf-token', owner.admin.csrf)
    .send({ name: `Test key ${randomUUID().slice(0, 8)}`, access: 'read', ...body })
    .expect(201);
  return res.body as CreatedApiKey;
}

/** Revokes a key through the JSON API. */
export async function revokeApiKey(owner: KeyOwner, keyId: string): Promise<void> {
  await owner.admin.agent
    .delete(`/api/organizations/${owner.orgId}/api-keys/${keyId}`)
    .set('x-csrf-token', owner.admin.csrf)
    .expect(200);
}

/** The fields of an API key's view (ApiKeyView), as the JSON API answers and OpenAPI describes them. */
export const API_KEY_VIEW_FIELDS = [
  'access',
  'createdAt',
  'createdBy',
  'expiresAt',
  'keyId',
  'lastUsedAt',
  'name',
  'organizationId',
  'prefix',
  'resourceTypes',
  'revokedAt',
  'state',
  'updatedAt',
  'userConnections',
];
