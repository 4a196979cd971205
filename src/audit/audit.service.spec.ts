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

  it('caps long strings', () => {
    expect((sanitizeDetail('x'.repeat(1000)) as string).length).toBeLessThan(510);
  });
});
