import { signUnsubscribeToken, unsubscribeKey, verifyUnsubscribeToken } from './unsubscribe-token';

describe('unsubscribe tokens', () => {
  const key = unsubscribeKey('s'.repeat(40));
  const claims = {
    userId: '7d1f6a4e-1f0b-4c1e-9a53-0c3c3b8f2a10',
    channel: 'admin-connections' as const,
    tokenId: '0b8f2f0e-5b7c-4a43-8d9e-7e6a2e4f9c11',
  };

  it('round-trips the user, channel and message id', () => {
    expect(verifyUnsubscribeToken(signUnsubscribeToken(claims, key), [key])).toEqual(claims);
    const own = { ...claims, channel: 'own-connection' as const };
    expect(verifyUnsubscribeToken(signUnsubscribeToken(own, key), [key])).toEqual(own);
  });

  it('is opaque: the token shows neither the user id nor the message id, in any encoding', () => {
    const token = signUnsubscribeToken(claims, key);
    const decoded = Buffer.from(token.split('.')[1], 'base64url');
    for (const id of [claims.userId, claims.tokenId]) {
      const raw = Buffer.from(id.replaceAll('-', ''), 'hex');
      expect(token).not.toContain(id);
      expect(token).not.toContain(id.replaceAll('-', ''));
      expect(token).not.toContain(raw.toString('base64url'));
      expect(decoded.includes(raw)).toBe(false);
      expect(decoded.toString('latin1')).not.toContain(id);
    }
    // Two links for the same message differ (a random IV each).
    expect(signUnsubscribeToken(claims, key)).not.toBe(token);
  });

  it('verifies with any listed key (secret rotation)', () => {
    const old = unsubscribeKey('o'.repeat(40));
    expect(verifyUnsubscribeToken(signUnsubscribeToken(claims, old), [key, old])).toEqual(claims);
  });

  it('refuses a token made with another key', () => {
    const forged = signUnsubscribeToken(claims, unsubscribeKey('x'.repeat(40)));
    expect(verifyUnsubscribeToken(forged, [key])).toBeNull();
  });

  it('refuses an altered token and malformed input', () => {
    const token = signUnsubscribeToken(claims, key);
    const [v, body] = token.split('.');
    const bytes = Buffer.from(body, 'base64url');
    for (const at of [0, 12, 20, 44, bytes.length - 1]) {
      const altered = Buffer.from(bytes);
      altered[at] ^= 0x01;
      expect(verifyUnsubscribeToken(`${v}.${altered.toString('base64url')}`, [key])).toBeNull();
    }
    expect(verifyUnsubscribeToken(`u1.${body}`, [key])).toBeNull();
    expect(verifyUnsubscribeToken(`${v}.${bytes.subarray(1).toString('base64url')}`, [key])).toBeNull();
    for (const bad of [undefined, 42, '', 'u2', 'u2.', `${token}.x`, 'x'.repeat(600), 'u2.!!!!']) {
      expect(verifyUnsubscribeToken(bad, [key])).toBeNull();
    }
  });

  it('refuses to make a token of anything but two uuids and a known channel', () => {
    expect(() => signUnsubscribeToken({ ...claims, userId: 'admin' }, key)).toThrow();
    expect(() => signUnsubscribeToken({ ...claims, channel: 'everything' as never }, key)).toThrow();
  });
});
