import { validateSync } from 'class-validator';

import type { ApiKeyView } from 'src/api-keys/api-keys.types';

import { apiKeyRow, apiKeysPage, createApiKeyDto, revokedFlash, submittedApiKeyForm } from './api-keys-page';

const org = { id: '22222222-2222-2222-2222-222222222222', name: 'Mercy' };
const now = new Date('2030-06-01T12:00:00Z');

function view(overrides: Partial<ApiKeyView> = {}): ApiKeyView {
  return {
    keyId: 'abc123def456',
    prefix: 'ecgk_abc123def456',
    organizationId: org.id,
    name: 'Lab interface',
    access: 'read',
    resourceTypes: null,
    userConnections: false,
    state: 'active',
    expiresAt: null,
    revokedAt: null,
    lastUsedAt: null,
    createdBy: null,
    createdAt: '2030-05-01T08:30:00.000Z',
    updatedAt: '2030-05-01T08:30:00.000Z',
    ...overrides,
  };
}

describe('API keys page', () => {
  it('shows each key in words: state, access, resource types, dates, and Revoke unless revoked', () => {
    expect(apiKeyRow(view())).toMatchObject({
      prefix: 'ecgk_abc123def456',
      badge: { label: 'Active', cssClass: 'ok' },
      access: 'Read',
      resourceTypes: 'All',
      userConnections: 'No',
      created: { text: '2030-05-01 08:30 UTC', iso: '2030-05-01T08:30:00.000Z' },
      expires: { text: 'Never', iso: null },
      lastUsed: { text: 'Never', iso: null },
      canRevoke: true,
    });
    expect(
      apiKeyRow(
        view({
          state: 'revoked',
          access: 'read_write',
          resourceTypes: ['Patient', 'Observation'],
          userConnections: true,
          revokedAt: '2030-05-03T00:00:00.000Z',
        }),
      ),
    ).toMatchObject({
      badge: { label: 'Revoked' },
      access: 'Read and write',
      resourceTypes: 'Patient, Observation',
      userConnections: 'Yes',
      revoked: { text: '2030-05-03 00:00 UTC' },
      canRevoke: false,
    });
    expect(apiKeyRow(view({ state: 'expired' })).badge).toMatchObject({ label: 'Expired', cssClass: 'warn' });
  });

  it('counts active keys, offers tomorrow as the earliest expiry and leaves the gateway out when not given', () => {
    const sut = apiKeysPage(org, [view(), view({ keyId: 'zzzzzzzzzzzz', state: 'revoked' })], { now });
    expect(sut).toMatchObject({
      title: 'API keys',
      activeCount: 1,
      minExpiry: '2030-06-02',
      created: null,
      gateway: null,
      hasErrors: false,
      links: {
        organization: `/admin/organizations/${org.id}`,
        keys: `/admin/organizations/${org.id}/api-keys`,
      },
    });
    expect(sut.accessOptions).toEqual([
      { value: 'read', label: 'Read', selected: true },
      { value: 'read_write', label: 'Read and write', selected: false },
    ]);
    expect(apiKeysPage(org, [], { now, gatewayBaseUrl: 'https://x/gw' }).gateway).toEqual({
      baseUrl: 'https://x/gw',
    });
  });

  it('shows a new key once, with its whole secret', () => {
    const sut = apiKeysPage(org, [view()], {
      now,
      created: { key: view(), secret: 'ecgk_abc123def456_secret' },
    });
    expect(sut.created).toEqual({
      name: 'Lab interface',
      prefix: 'ecgk_abc123def456',
      secret: 'ecgk_abc123def456_secret',
    });
  });

  it('turns the form into the create DTO: types split on commas and spaces, blanks absent', () => {
    const dto = createApiKeyDto({
      name: '  Lab  ',
      access: 'read_write',
      resourceTypes: 'Patient, Observation  Encounter,',
      userConnections: 'true',
      expiresAt: '2031-01-01',
      _csrf: 'x',
    } as never);
    expect({ ...dto }).toEqual({
      name: 'Lab',
      access: 'read_write',
      resourceTypes: ['Patient', 'Observation', 'Encounter'],
      userConnections: true,
      expiresAt: '2031-01-01',
    });
    expect(validateSync(dto, { whitelist: true })).toEqual([]);
    expect({ ...createApiKeyDto({ name: 'x', resourceTypes: ' ', expiresAt: '' }) }).toEqual({
      name: 'x',
      access: undefined,
      resourceTypes: undefined,
      userConnections: false,
      expiresAt: undefined,
    });
  });

  it('keeps what was typed to show the form again', () => {
    expect(
      submittedApiKeyForm({ name: 'a', access: 7, userConnections: 'on', expiresAt: ' 2031-01-01 ' }),
    ).toEqual({
      name: 'a',
      access: '',
      resourceTypes: '',
      userConnections: true,
      expiresAt: '2031-01-01',
    });
  });

  it('says what a revocation did', () => {
    expect(revokedFlash(view(), false)).toEqual({
      level: 'success',
      text: expect.stringMatching(/^Revoked ecgk_abc123def456… \(Lab interface\)\./),
    });
    expect(revokedFlash(view(), true).level).toBe('info');
  });
});
