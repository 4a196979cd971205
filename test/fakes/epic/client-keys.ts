import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

/** A client's signing key for `private_key_jwt`, with its public JWK. */
export interface ClientKey {
  alg: 'RS256' | 'RS384' | 'RS512' | 'ES256' | 'ES384';
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

/** A key pair a test client signs its assertions with. SMART v2 clients support RS384 and ES384. */
export async function createClientKey(
  alg: ClientKey['alg'] = 'ES384',
  kid: string = randomUUID(),
): Promise<ClientKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { alg, kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

/**
 * A client assertion as Epic wants it (docs/epic-and-smart.md §3): `iss` = `sub` = client id, `aud` = the
 * exact token URL, a fresh string `jti`, `iat`/`nbf` now, `exp` 4 minutes ahead. `claims` overrides or
 * adds claims (use `undefined` to drop one), `header` overrides the protected header.
 */
export function signClientAssertion(
  key: ClientKey,
  args: {
    clientId: string;
    tokenUrl: string;
    claims?: Record<string, unknown>;
    header?: Record<string, unknown>;
  },
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = {
    iss: args.clientId,
    sub: args.clientId,
    aud: args.tokenUrl,
    jti: randomUUID(),
    iat: now,
    nbf: now,
    exp: now + 240,
    ...args.claims,
  };
  for (const name of Object.keys(payload)) if (payload[name] === undefined) delete payload[name];
  return new SignJWT(payload)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...args.header })
    .sign(key.privateKey);
}

/**
 * A client's JWK Set URL, served on its own loopback port (Epic fetches it over HTTP:
 * docs/epic-and-smart.md §3).
 */
export interface JwksHost {
  url: string;
  /** Replace the published keys (key rotation). */
  setKeys(keys: JWK[]): void;
  /** How many times the JWK Set was fetched. */
  fetches(): number;
  /** `Cache-Control` sent with the JWK Set (default none). */
  setCacheControl(value: string | undefined): void;
  close(): Promise<void>;
}

export async function startJwksHost(keys: JWK[] = []): Promise<JwksHost> {
  let published = keys;
  let count = 0;
  let cacheControl: string | undefined;
  const server = createServer((req, res) => {
    count += 1;
    const body = JSON.stringify({ keys: published });
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(body),
      ...(cacheControl ? { 'Cache-Control': cacheControl } : {}),
    });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    setKeys: (next) => {
      published = next;
    },
    fetches: () => count,
    setCacheControl: (value) => {
      cacheControl = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
