import { sanitizeDetail } from './audit.service';

describe('sanitizeDetail', () => {
  it('drops secret-named keys at any depth, case-insensitively', () => {
    const out = sanitizeDetail({
      clientId: 'abc',
      client_secret: 's1',
      nested: { Access_Token: 't', deeper: [{ refreshToken: 'r', ok: 1 }] },
      password: 'p',
    });
    expect(out).toEqual({ clientId: 'abc', nested: { deeper: [{ ok: 1 }] } });
  });

  it('stores dates, at any depth, as ISO 8601 strings (not as the empty objects they walk as)', () => {
    const expiresAt = new Date('2026-11-23T12:34:56.789Z');
    const out = sanitizeDetail({
      expiresAt,
      nested: { at: expiresAt, list: [expiresAt, { when: expiresAt }] },
      invalid: new Date('not a date'),
    });
    expect(out).toEqual({
      expiresAt: '2026-11-23T12:34:56.789Z',
      nested: {
        at: '2026-11-23T12:34:56.789Z',
        list: ['2026-11-23T12:34:56.789Z', { when: '2026-11-23T12:34:56.789Z' }],
      },
      invalid: null,
    });
    expect(sanitizeDetail(expiresAt)).toBe('2026-11-23T12:34:56.789Z');
  });

  it('caps long strings', () => {
    expect((sanitizeDetail('x'.repeat(1000)) as string).length).toBeLessThan(510);
  });
});
