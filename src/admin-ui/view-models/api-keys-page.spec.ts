import { validateSync } from 'class-validator';

import type { ApiKeyView } from 'src/api-keys/api-keys.types';

import {
  apiKeyRow,
  apiKeysPage,
  createApiKeyDto,
  editedFlash,
  editFormOf,
  revokedFlash,
  submittedApiKeyForm,
  updateApiKeyDto,
} from './api-keys-page';

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

  it('offers an Edit form for active keys only, filled with the key’s settings', () => {
    const key = view({
      access: 'read_write',
      resourceTypes: ['Patient', 'Observation'],
      userConnections: true,
      expiresAt: '2031-01-31T00:00:00.000Z',
    });
    expect(apiKeyRow(key).edit).toEqual({
      action: `/admin/organizations/${org.id}/api-keys/abc123def456/edit`,
      idPrefix: 'edit-abc123def456',
      form: {
        name: 'Lab interface',
        access: 'read_write',
        resourceTypes: 'Patient, Observation',
        userConnections: true,
        expiresAt: '2031-01-31',
      },
      errors: {},
      hasErrors: false,
      open: false,
      accessOptions: [
        { value: 'read', label: 'Read', selected: false },
        { value: 'read_write', label: 'Read and write', selected: true },
      ],
      expiryTime: null,
    });
    expect(apiKeyRow(view({ state: 'revoked', revokedAt: '2030-05-03T00:00:00.000Z' })).edit).toBeNull();
    expect(apiKeyRow(view({ state: 'expired', expiresAt: '2030-05-03T00:00:00.000Z' })).edit).toBeNull();
    // A time set through the JSON API is told, since the date field shows the day only.
    expect(apiKeyRow(view({ expiresAt: '2031-01-31T12:30:00.000Z' })).edit).toMatchObject({
      form: { expiresAt: '2031-01-31' },
      expiryTime: '2031-01-31 12:30 UTC',
    });
  });

  it('opens the Edit form sent back with its messages and what was typed, on that key only', () => {
    const other = view({ keyId: 'zzzzzzzzzzzz', prefix: 'ecgk_zzzzzzzzzzzz' });
    const typed = { ...editFormOf(view()), name: '' };
    const sut = apiKeysPage(org, [view(), other], {
      now,
      edit: { keyId: 'abc123def456', form: typed, errors: { name: 'name must be 1 to 100 characters' } },
    });
    expect(sut.rows[0].edit).toMatchObject({ open: true, hasErrors: true, form: { name: '' } });
    expect(sut.rows[1].edit).toMatchObject({
      open: false,
      hasErrors: false,
      form: { name: 'Lab interface' },
    });
    expect(sut.hasErrors).toBe(false); // the create form has none
  });

  it('turns the Edit form into the update DTO: every field set, blanks are all types and never', () => {
    const current = view({ expiresAt: '2031-01-31T12:30:00.000Z', resourceTypes: ['Observation'] });
    const dto = updateApiKeyDto(
      {
        name: ' Renamed ',
        access: 'read_write',
        resourceTypes: 'Patient Encounter',
        expiresAt: '2032-02-02',
      },
      current,
    );
    expect({ ...dto }).toEqual({
      name: 'Renamed',
      access: 'read_write',
      resourceTypes: ['Patient', 'Encounter'],
      userConnections: false,
      expiresAt: '2032-02-02',
    });
    expect(validateSync(dto, { whitelist: true })).toEqual([]);
    expect({
      ...updateApiKeyDto({ name: 'x', access: 'read', resourceTypes: '', expiresAt: '' }, current),
    }).toEqual({
      name: 'x',
      access: 'read',
      resourceTypes: null,
      userConnections: false,
      expiresAt: null,
    });
    // The key's own day, unchanged, keeps its time.
    expect(
      updateApiKeyDto({ name: 'x', access: 'read', expiresAt: '2031-01-31' }, current).expiresAt,
    ).toBeUndefined();
    const refused = updateApiKeyDto(
      { name: '', access: 'write', resourceTypes: 'patient', expiresAt: '2000-01-01' },
      current,
    );
    expect(
      validateSync(refused, { whitelist: true })
        .map((e) => e.property)
        .sort(),
    ).toEqual(['access', 'expiresAt', 'name', 'resourceTypes']);
  });

  it('leaves the resource types out of the update when they are unchanged (in any order), as the expiry', () => {
    const legacy = view({ resourceTypes: ['Patient', 'NotAnR4Type'] });
    const dto = updateApiKeyDto(
      { name: 'Renamed', access: 'read', resourceTypes: 'NotAnR4Type, Patient', expiresAt: '' },
      legacy,
    );
    expect(dto.resourceTypes).toBeUndefined();
    expect(validateSync(dto, { whitelist: true })).toEqual([]);
    expect(
      updateApiKeyDto({ name: 'x', access: 'read', resourceTypes: '' }, view()).resourceTypes,
    ).toBeUndefined();
    expect(
      updateApiKeyDto({ name: 'x', access: 'read', resourceTypes: 'Patient' }, legacy).resourceTypes,
    ).toEqual(['Patient']);
  });

  it('says what an Edit changed, or that nothing did', () => {
    const before = view();
    expect(editedFlash(before, view({ name: 'Renamed', resourceTypes: ['Patient'] }))).toEqual({
      level: 'success',
      text: expect.stringMatching(/^Saved ecgk_abc123def456… \(Renamed\): changed name, resource types\./),
    });
    expect(editedFlash(before, view())).toEqual({
      level: 'info',
      text: 'Nothing changed on ecgk_abc123def456… (Lab interface).',
    });
  });
});
