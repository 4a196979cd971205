import { createHash, timingSafeEqual } from 'node:crypto';

import { derivedKey, openToken, sealToken, UUID, uuidBytes, uuidText } from './sealed-token';

/** How long the link emailed to an entered address works. */
export const CONFIRM_LINK_TTL_MS = 3 * 86_400_000;

const VERSION = 'c1';
/** user id (16 bytes), SHA-256 of the address (first 16), expiry in seconds since 1970 (6). */
const PLAIN_BYTES = 38;

/** The key of address-confirmation links: derived from a session secret with a label of its own. */
export function confirmKey(sessionSecret: string): Buffer {
  return derivedKey(sessionSecret, 'epic-connect contact email confirmation v1');
}

const addressDigest = (address: string): Buffer =>
  createHash('sha256').update(address.trim().toLowerCase(), 'utf8').digest().subarray(0, 16);

/**
 * `c1.<sealed>`: opaque and authenticated (src/mail/sealed-token.ts). It stands for one user and
 * one address (by its hash: the link does not carry the address) until `expiresAt`.
 */
export function signConfirmToken(userId: string, address: string, expiresAt: Date, key: Buffer): string {
  if (!UUID.test(userId)) throw new Error('the user id must be a uuid');
  const expiry = Buffer.alloc(6);
  expiry.writeUIntBE(Math.floor(expiresAt.getTime() / 1000), 0, 6);
  return sealToken(VERSION, Buffer.concat([uuidBytes(userId), addressDigest(address), expiry]), key);
}

/** What a confirmation link says, or null when it is not one of ours (forged, altered, malformed). */
export interface ConfirmClaims {
  userId: string;
  expiresAt: Date;
  /** Whether `address` is the one the link was made for (case-insensitive). */
  isFor: (address: string) => boolean;
}

export function verifyConfirmToken(token: unknown, keys: Buffer[]): ConfirmClaims | null {
  const plain = openToken(VERSION, token, keys, PLAIN_BYTES);
  if (!plain) return null;
  const digest = plain.subarray(16, 32);
  return {
    userId: uuidText(plain.subarray(0, 16)),
    expiresAt: new Date(plain.readUIntBE(32, 6) * 1000),
    isFor: (address) => timingSafeEqual(addressDigest(address), digest),
  };
}
