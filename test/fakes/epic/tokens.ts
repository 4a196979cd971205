import { randomBytes, randomUUID } from 'node:crypto';

import { calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';

import { TEST_SECRET_MARKER } from 'test/factories/secrets';

/** The fake's signing key: it signs id_tokens and is served at `jwks_uri`. */
export interface ServerKeys {
  privateKey: CryptoKey;
  publicJwk: JWK;
  kid: string;
}

let serverKeys: Promise<ServerKeys> | undefined;

/** One RS256 key per process: generating RSA keys is slow, and tests only need it to be consistent. */
export function loadServerKeys(): Promise<ServerKeys> {
  serverKeys ??= (async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const jwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(jwk);
    return { privateKey, publicJwk: { ...jwk, kid, alg: 'RS256', use: 'sig' }, kid };
  })();
  return serverKeys;
}

export type TokenKind = 'code' | 'access' | 'refresh' | 'launch';

export interface MintSettings {
  tokenFormat: 'jwt' | 'opaque';
  kid: string;
  issuer: string;
  /** The fake's clock, in ms since the epoch. */
  now: number;
}

const b64json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/**
 * Codes and tokens: long JWT-shaped strings like the sandbox's, or opaque ones (`tokenFormat`), so the
 * app never relies on their format or length (docs/epic-and-smart.md §10). Access and refresh tokens
 * carry the test-secret marker, so a token that reaches the app's log fails the run.
 */
export function mintToken(kind: TokenKind, claims: Record<string, unknown>, settings: MintSettings): string {
  const secret = kind === 'access' || kind === 'refresh';
  if (settings.tokenFormat === 'opaque') {
    return `${secret ? `${TEST_SECRET_MARKER}.` : ''}${randomBytes(kind === 'launch' ? 24 : 48).toString('base64url')}`;
  }
  const now = Math.floor(settings.now / 1000);
  const header = b64json({ alg: 'RS256', kid: settings.kid, typ: 'JWT' });
  const payload = b64json({
    'urn:oid:1.2.840.114350.1.13.0.1.7.3.688884.100': 'FAKE-EPIC',
    'epic.tokentype': kind,
    iss: settings.issuer,
    jti: randomUUID(),
    iat: now,
    nbf: now,
    ...claims,
    'epic.eci': `urn:epic:${randomBytes(12).toString('base64url')}`,
  });
  const signature = randomBytes(256).toString('base64url'); // the length of an RS256 signature
  return `${header}.${payload}.${secret ? TEST_SECRET_MARKER + signature.slice(TEST_SECRET_MARKER.length) : signature}`;
}
