import { confirmKey, signConfirmToken, verifyConfirmToken } from './confirm-token';

describe('address confirmation tokens', () => {
  const key = confirmKey('s'.repeat(40));
  const userId = '7d1f6a4e-1f0b-4c1e-9a53-0c3c3b8f2a10';
  const expiresAt = new Date('2026-12-10T00:00:00Z');

  it('names the user, the expiry and (by its hash only) the address', () => {
    const token = signConfirmToken(userId, 'Pat@Example.org', expiresAt, key);
    const claims = verifyConfirmToken(token, [key])!;
    expect(claims.userId).toBe(userId);
    expect(claims.expiresAt).toEqual(expiresAt);
    expect(claims.isFor('pat@example.org')).toBe(true);
    expect(claims.isFor('other@example.org')).toBe(false);
    expect(token).not.toContain(userId);
    // Neither the address nor the user id is in the token, as text or in its bytes (sealed: AES-GCM).
    // Not a search for a short piece such as "pat": random base64url holds one now and then.
    const bytes = Buffer.from(token.split('.')[1], 'base64url').toString('latin1').toLowerCase();
    expect(token.toLowerCase()).not.toContain('pat@example.org');
    expect(bytes).not.toContain('pat@example.org');
    expect(bytes).not.toContain(Buffer.from(userId.replace(/-/g, ''), 'hex').toString('latin1'));
  });

  it('refuses another key, an altered token and another kind of token', () => {
    const token = signConfirmToken(userId, 'pat@example.org', expiresAt, key);
    expect(verifyConfirmToken(token, [confirmKey('x'.repeat(40))])).toBeNull();
    const [v, body] = token.split('.');
    const bytes = Buffer.from(body, 'base64url');
    bytes[20] ^= 0x01;
    expect(verifyConfirmToken(`${v}.${bytes.toString('base64url')}`, [key])).toBeNull();
    expect(verifyConfirmToken(`u2.${body}`, [key])).toBeNull();
    for (const bad of [undefined, '', 'c1', 'c1.', `${token}.x`]) {
      expect(verifyConfirmToken(bad, [key])).toBeNull();
    }
  });
});
