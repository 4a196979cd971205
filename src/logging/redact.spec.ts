import { CENSOR, isSecretKey, redactSecretFields, redactSecretPatterns } from './redact';

describe('redactSecretFields', () => {
  it('replaces secret-named values at any depth and in arrays, whatever the case of the key', () => {
    const logged = {
      client_secret: 's1',
      nested: { deeper: [{ access_token: 'a1', Authorization: 'Bearer a2' }, { refreshToken: 'r1' }] },
      headers: { 'X-CSRF-Token': 'c1', 'set-cookie': ['sid=1'] },
      keep: { id: 'org-1', count: 3 },
    };
    const out = redactSecretFields(logged);
    expect(out).toEqual({
      client_secret: CENSOR,
      nested: { deeper: [{ access_token: CENSOR, Authorization: CENSOR }, { refreshToken: CENSOR }] },
      headers: { 'X-CSRF-Token': CENSOR, 'set-cookie': CENSOR },
      keep: { id: 'org-1', count: 3 },
    });
    for (const secret of ['s1', 'a1', 'a2', 'r1', 'c1', 'sid=1']) {
      expect(JSON.stringify(out)).not.toContain(secret);
    }
  });

  it("never changes the caller's objects, and returns untouched subtrees as they are", () => {
    const keep = { id: 'org-1', list: [1, 2] };
    const logged = { keep, nested: { token: 't1' } };
    const out = redactSecretFields(logged);
    expect(logged.nested.token).toBe('t1');
    expect(out).not.toBe(logged);
    expect(out.keep).toBe(keep);
    const clean = { a: { b: [1, { c: 'x' }] } };
    expect(redactSecretFields(clean)).toBe(clean);
  });

  it('walks class instances and errors as JSON writes them, and leaves toJSON values alone', () => {
    class Credential {
      constructor(
        readonly id: string,
        readonly accessToken: string,
      ) {}
    }
    const error = Object.assign(new Error('failed'), { config: { headers: { Authorization: 'Bearer e1' } } });
    const at = new Date('2026-01-01T00:00:00Z');
    const out = redactSecretFields({ credential: new Credential('c-1', 'tok'), error, at });
    expect(JSON.parse(JSON.stringify(out))).toEqual({
      credential: { id: 'c-1', accessToken: CENSOR },
      error: { config: { headers: { Authorization: CENSOR } } },
      at: '2026-01-01T00:00:00.000Z',
    });
  });

  it('leaves the keys it is told to skip to their own serializer', () => {
    const req = { headers: { authorization: 'Bearer r1' } };
    const out = redactSecretFields({ req, token: 't1' }, new Set(['req']));
    expect(out.req).toBe(req);
    expect(out.token).toBe(CENSOR);
  });

  it('never writes a secret through a cycle or past its depth limit', () => {
    const cyclic: Record<string, unknown> = { token: 'c1' };
    cyclic.self = cyclic;
    expect(JSON.stringify(redactSecretFields({ cyclic }))).not.toContain('c1');

    let deep: Record<string, unknown> = { secret: 'd1' };
    for (let i = 0; i < 30; i++) deep = { next: deep };
    const written = JSON.stringify(redactSecretFields(deep));
    expect(written).not.toContain('d1');
    expect(written).toContain('[truncated]');
  });

  it('names secrets case-insensitively', () => {
    expect(isSecretKey('Authorization')).toBe(true);
    expect(isSecretKey('CLIENT_SECRET')).toBe(true);
    expect(isSecretKey('SMTP_URL')).toBe(true);
    expect(isSecretKey('pass')).toBe(true);
    expect(isSecretKey('organizationId')).toBe(false);
  });
});

describe('redactSecretPatterns', () => {
  it('keeps an API key public prefix and drops its secret', () => {
    const key = `ecgk_abcdefghijkl_${'A'.repeat(43)}`;
    expect(redactSecretPatterns(`{"msg":"bad key ${key}"}`)).toBe(
      '{"msg":"bad key ecgk_abcdefghijkl_[redacted]"}',
    );
  });
});
