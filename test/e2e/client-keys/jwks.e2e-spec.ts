import { createLocalJWKSet, decodeProtectedHeader, importJWK, jwtVerify, SignJWT, type JWK } from 'jose';

import { ClientKeysService } from 'src/client-keys/client-keys.service';
import { SIGNING_ALGS, type PublicJwk } from 'src/client-keys/client-keys.types';
import { SecretCipherService } from 'src/crypto/secret-cipher.service';

import { createTestApp, TestApp } from 'test/setup/test-app';

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

interface KeyRow {
  id: string;
  kid: string;
  alg: string;
  state: string;
  public_jwk: Record<string, unknown>;
  private_key_enc: string | null;
}

/**
 * The production JWK Set Epic fetches, and the signing keys behind it, over HTTP against the booted
 * app (the sandbox set, at its own URL, is environments.e2e-spec.ts's).
 */
describe('GET /.well-known/jwks.json', () => {
  let t: TestApp;
  let keys: ClientKeysService;

  beforeAll(async () => {
    t = await createTestApp({
      // 3000 s of overlap: the JWK Set may be cached for half of it (under the one-hour cap).
      env: { KEY_ROTATION_OVERLAP_SECONDS: '3000', PUBLIC_BASE_URL: 'https://connect.example.org' },
    });
    keys = t.app.get(ClientKeysService);
  });
  afterAll(() => t.close());

  const rows = () =>
    t.dataSource.query<KeyRow[]>(
      `SELECT id, kid, alg, state, public_jwk, private_key_enc FROM client_signing_key
        WHERE environment = 'production' ORDER BY alg`,
    );

  it('publishes one active RS384 and one ES384 key after boot, to anyone, without a session', async () => {
    const res = await t.http().get('/.well-known/jwks.json').expect(200);

    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['set-cookie']).toBeUndefined();
    const body = res.body as { keys: PublicJwk[] };
    expect(body.keys.map((k) => k.alg).sort()).toEqual(['ES384', 'RS384']);
    for (const key of body.keys) {
      expect(key).toEqual(
        expect.objectContaining({
          kid: expect.any(String),
          alg: expect.stringMatching(/^(RS384|ES384)$/),
          use: 'sig',
          kty: key.alg === 'RS384' ? 'RSA' : 'EC',
        }),
      );
    }
    const ec = body.keys.find((k) => k.alg === 'ES384')!;
    expect(ec.crv).toBe('P-384');
    const rsa = body.keys.find((k) => k.alg === 'RS384')!;
    expect(Buffer.from(rsa.n!, 'base64url').length * 8).toBeGreaterThanOrEqual(2048);

    const stored = await rows();
    expect(stored.map((r) => [r.alg, r.state])).toEqual([
      ['ES384', 'active'],
      ['RS384', 'active'],
    ]);
    expect(body.keys.map((k) => k.kid).sort()).toEqual(stored.map((r) => r.kid).sort());
  });

  it('never carries a private member, anywhere in the body', async () => {
    const res = await t.http().get('/.well-known/jwks.json').expect(200);
    for (const member of PRIVATE_MEMBERS) expect(res.text).not.toContain(`"${member}"`);
    for (const key of (res.body as { keys: Record<string, unknown>[] }).keys) {
      const allowed =
        key.kty === 'RSA'
          ? ['kty', 'kid', 'alg', 'use', 'n', 'e']
          : ['kty', 'kid', 'alg', 'use', 'crv', 'x', 'y'];
      expect(Object.keys(key).sort()).toEqual(allowed.sort());
    }
  });

  it('may be cached for half the overlap, at most an hour (so Epic sees a new key well inside it)', async () => {
    const res = await t.http().get('/.well-known/jwks.json').expect(200);
    expect(res.headers['cache-control']).toBe('public, max-age=1500');
  });

  it('publishes the public half of the key signingKey() signs with', async () => {
    const res = await t.http().get('/.well-known/jwks.json').expect(200);
    const jwks = createLocalJWKSet(res.body as { keys: JWK[] });
    for (const alg of SIGNING_ALGS) {
      const signing = await keys.signingKey(alg, 'production');
      expect(signing.alg).toBe(alg);
      const jwt = await new SignJWT({ iss: 'client-id', sub: 'client-id' })
        .setProtectedHeader({ alg, kid: signing.kid, typ: 'JWT' })
        .setIssuedAt()
        .setExpirationTime('4m')
        .sign(signing.key);
      // Verified by the JWK Set as Epic would (by kid), and by that one published key alone.
      const { protectedHeader } = await jwtVerify(jwt, jwks, { algorithms: [alg] });
      expect(protectedHeader.kid).toBe(signing.kid);
      const published = (res.body as { keys: JWK[] }).keys.find((k) => k.kid === signing.kid)!;
      await expect(jwtVerify(jwt, await importJWK(published, alg))).resolves.toBeDefined();
      expect(decodeProtectedHeader(jwt).alg).toBe(alg);
    }
  });

  it('returns the cached signing key for the same key, and one that cannot be exported', async () => {
    const first = await keys.signingKey('ES384', 'production');
    const second = await keys.signingKey('ES384', 'production');
    expect(second.key).toBe(first.key);
    expect(first.key.extractable).toBe(false);
  });

  it('gives the URL to register at Epic from PUBLIC_BASE_URL', () => {
    expect(keys.jwksUrl('production')).toBe('https://connect.example.org/.well-known/jwks.json');
    expect(keys.jwksUrl('sandbox')).toBe('https://connect.example.org/.well-known/jwks-sandbox.json');
  });

  it('keeps the private part encrypted at rest, bound to its row', async () => {
    const cipher = t.app.get(SecretCipherService);
    const stored = await rows();
    for (const row of stored) {
      expect(row.private_key_enc).toMatch(/^v1\./);
      const privateJwk = JSON.parse(
        cipher.decrypt(row.private_key_enc!, `client_signing_key:${row.id}`),
      ) as JWK;
      expect(typeof privateJwk.d).toBe('string');
      // The clear private value is nowhere in the row, and the public JWK column is public only.
      expect(row.private_key_enc).not.toContain(privateJwk.d);
      expect(row.private_key_enc).not.toContain('"d"');
      expect(row.private_key_enc).not.toContain('PRIVATE KEY');
      expect(JSON.stringify(row.public_jwk)).not.toContain(privateJwk.d);
      for (const member of PRIVATE_MEMBERS) expect(row.public_jwk).not.toHaveProperty(member);
      // It is the private half of what is published.
      const publicMember = row.alg === 'RS384' ? 'n' : 'x';
      expect(privateJwk[publicMember as keyof JWK]).toBe(row.public_jwk[publicMember]);
    }
    // The ciphertext only decrypts for its own row (and with the service's key).
    const [a, b] = stored;
    expect(() => cipher.decrypt(a.private_key_enc!, `client_signing_key:${b.id}`)).toThrow();
    expect(() => cipher.decrypt(a.private_key_enc!, 'organization:x:client_secret')).toThrow();
  });
});
