import { apiKeyState, auditDetail, toApiKeyView, toPrincipal } from './api-key.view';
import { ApiKey } from './entities/api-key.entity';

const now = new Date('2030-06-01T12:00:00Z');

function row(overrides: Partial<ApiKey> = {}): ApiKey {
  return Object.assign(new ApiKey(), {
    id: '11111111-1111-1111-1111-111111111111',
    organizationId: '22222222-2222-2222-2222-222222222222',
    keyId: 'abc123def456',
    secretHash: 'f'.repeat(64),
    name: 'Lab interface',
    access: 'read_write',
    resourceTypes: ['Patient', 'Observation'],
    userConnections: true,
    expiresAt: null,
    revokedAt: null,
    lastUsedAt: new Date('2030-06-01T11:59:00Z'),
    createdBy: '33333333-3333-3333-3333-333333333333',
    createdAt: new Date('2030-05-01T00:00:00Z'),
    updatedAt: new Date('2030-05-02T00:00:00Z'),
    ...overrides,
  });
}

describe('API key views', () => {
  it('reads active, expired at its expiry instant, and revoked before expired', () => {
    expect(apiKeyState(row(), now)).toBe('active');
    expect(apiKeyState(row({ expiresAt: new Date(now.getTime() + 1) }), now)).toBe('active');
    expect(apiKeyState(row({ expiresAt: now }), now)).toBe('expired');
    expect(apiKeyState(row({ expiresAt: new Date(0), revokedAt: new Date(0) }), now)).toBe('revoked');
  });

  it('shows the prefix and what the key may do, never the hash', () => {
    const sut = toApiKeyView(row(), now);
    expect(sut).toEqual({
      keyId: 'abc123def456',
      prefix: 'ecgk_abc123def456',
      organizationId: '22222222-2222-2222-2222-222222222222',
      name: 'Lab interface',
      access: 'read_write',
      resourceTypes: ['Patient', 'Observation'],
      userConnections: true,
      state: 'active',
      expiresAt: null,
      revokedAt: null,
      lastUsedAt: '2030-06-01T11:59:00.000Z',
      createdBy: '33333333-3333-3333-3333-333333333333',
      createdAt: '2030-05-01T00:00:00.000Z',
      updatedAt: '2030-05-02T00:00:00.000Z',
    });
    expect(JSON.stringify(sut)).not.toContain('f'.repeat(64));
  });

  it('gives the gateway the principal and the audit trail the permissions, neither the hash', () => {
    expect(toPrincipal(row())).toEqual({
      keyId: 'abc123def456',
      organizationId: '22222222-2222-2222-2222-222222222222',
      name: 'Lab interface',
      access: 'read_write',
      resourceTypes: ['Patient', 'Observation'],
      userConnections: true,
    });
    expect(auditDetail(row({ expiresAt: new Date('2031-01-01T00:00:00Z') }))).toEqual({
      keyId: 'abc123def456',
      name: 'Lab interface',
      access: 'read_write',
      resourceTypes: ['Patient', 'Observation'],
      userConnections: true,
      expiresAt: '2031-01-01T00:00:00.000Z',
    });
  });
});
