import { exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT } from 'jose';

import { generateSigningKey, importPrivateKey, toPublicJwk } from './key-material';

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

describe('toPublicJwk', () => {
  it('keeps only the public members of an RSA private key, with kid, alg and use', async () => {
    const { privateKey } = await generateKeyPair('RS384', { extractable: true });
    const full = {
      ...(await exportJWK(privateKey)),
      oth: [{ r: 'x' }],
      k: 'secret',
      ext: true,
      key_ops: ['sign'],
    };
    const published = toPublicJwk(full, 'kid-1', 'RS384');
    expect(Object.keys(published).sort()).toEqual(['alg', 'e', 'kid', 'kty', 'n', 'use']);
    expect(published).toMatchObject({
      kty: 'RSA',
      kid: 'kid-1',
      alg: 'RS384',
      use: 'sig',
      n: full.n,
      e: full.e,
    });
    for (const member of PRIVATE_MEMBERS) expect(published).not.toHaveProperty(member);
  });

  it('keeps only crv, x and y of an EC private key', async () => {
    const { privateKey } = await generateKeyPair('ES384', { extractable: true });
    const published = toPublicJwk(await exportJWK(privateKey), 'kid-2', 'ES384');
    expect(Object.keys(published).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
    expect(published.crv).toBe('P-384');
  });

  it('refuses a symmetric key or one missing a public member', () => {
    expect(() => toPublicJwk({ kty: 'oct', k: 'c2VjcmV0' }, 'k', 'RS384')).toThrow(/Unsupported key type/);
    expect(() => toPublicJwk({ kty: 'RSA', e: 'AQAB' }, 'k', 'RS384')).toThrow(/member n missing/);
  });
});

describe('generateSigningKey', () => {
  it.each(['RS384', 'ES384'] as const)(
    '%s: a thumbprint kid, and a private key that signs what the public JWK verifies',
    async (alg) => {
      const generated = await generateSigningKey(alg);
      expect(generated.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(generated.publicJwk).toMatchObject({ kid: generated.kid, alg, use: 'sig' });
      const signingKey = await importPrivateKey(generated.privateJwk, alg);
      expect(signingKey.extractable).toBe(false);
      const jwt = await new SignJWT({ sub: 'x' })
        .setProtectedHeader({ alg, kid: generated.kid })
        .sign(signingKey);
      const { protectedHeader } = await jwtVerify(jwt, await importJWK(generated.publicJwk, alg));
      expect(protectedHeader.kid).toBe(generated.kid);
    },
  );

  it('makes a different key every time', async () => {
    const [a, b] = await Promise.all([generateSigningKey('ES384'), generateSigningKey('ES384')]);
    expect(a.kid).not.toBe(b.kid);
  });

  it('refuses to import a public JWK as a signing key', async () => {
    const { publicJwk } = await generateSigningKey('ES384');
    await expect(importPrivateKey(publicJwk, 'ES384')).rejects.toThrow(/no private part/);
  });
});
