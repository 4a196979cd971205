import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type CryptoKey,
  type JWK,
} from 'jose';

import type { PublicJwk, SigningAlg } from './client-keys.types';

/** The public members of each key type we make (RFC 7518 §6.2.1, §6.3.1): nothing else is ever published. */
const PUBLIC_MEMBERS = {
  RSA: ['n', 'e'],
  EC: ['crv', 'x', 'y'],
} as const;

/**
 * A public JWK built member by member from an allow-list (kty's public members, plus kid, alg
 * and use), so a private member (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`) can never reach the
 * JWK Set, whatever the input carries. Throws for a key type we do not publish.
 */
export function toPublicJwk(jwk: Record<string, unknown>, kid: string, alg: SigningAlg): PublicJwk {
  const kty = jwk.kty;
  if (kty !== 'RSA' && kty !== 'EC') throw new Error(`Unsupported key type for a signing key`);
  const out: PublicJwk = { kty, kid, alg, use: 'sig' };
  for (const member of PUBLIC_MEMBERS[kty]) {
    const value = jwk[member];
    if (typeof value !== 'string' || value.length === 0) {
      throw new Error(`Public JWK member ${member} missing`);
    }
    out[member] = value;
  }
  return out;
}

export interface GeneratedKey {
  /** RFC 7638 SHA-256 thumbprint of the public key: unique per key, and checkable by anyone. */
  kid: string;
  publicJwk: PublicJwk;
  /** The private JWK (to be encrypted at once; never logged or returned). */
  privateJwk: JWK;
}

/** A fresh key pair for `alg` (RSA 2048 for RS384, P-384 for ES384), exported as JWKs. */
export async function generateSigningKey(alg: SigningAlg): Promise<GeneratedKey> {
  // Extractable so the private part can be exported once, encrypted and stored.
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const publicRaw = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicRaw, 'sha256');
  const privateJwk = await exportJWK(privateKey);
  return { kid, publicJwk: toPublicJwk(publicRaw, kid, alg), privateJwk: { ...privateJwk, kid, alg } };
}

/** Imports a stored private JWK as a non-extractable WebCrypto signing key. */
export async function importPrivateKey(privateJwk: JWK, alg: SigningAlg): Promise<CryptoKey> {
  if (typeof privateJwk.d !== 'string') throw new Error('Stored signing key has no private part');
  return importJWK({ ...privateJwk, ext: false, key_ops: ['sign'] }, alg, {
    extractable: false,
  }) as Promise<CryptoKey>;
}
