import { hash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

/**
 * The API key format: `ecgk_<keyId>_<secret>`.
 *
 * - `ecgk_` ("epic-connect gateway key") is a fixed prefix, so secret scanners can find a leaked
 *   key in code, logs or tickets (the regex is in src/api-keys/README.md);
 * - `keyId` is 12 characters of [a-z0-9], public: it names the key in the consoles, the audit
 *   trail and the logs, and finds its row without scanning;
 * - `secret` is 32 random bytes in base64url without padding (43 characters): the only part
 *   that is secret. Only its SHA-256 is stored.
 */
export const API_KEY_PREFIX = 'ecgk';
export const KEY_ID_LENGTH = 12;
const KEY_ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const SECRET_BYTES = 32;
/** base64url of 32 bytes without padding. */
export const SECRET_LENGTH = 43;
/** `ecgk_` + keyId + `_` + secret. */
export const API_KEY_LENGTH = API_KEY_PREFIX.length + 1 + KEY_ID_LENGTH + 1 + SECRET_LENGTH;

export const KEY_ID_PATTERN = /^[a-z0-9]{12}$/;
/**
 * What a secret scanner looks for (GitHub secret scanning custom pattern, gitleaks, trufflehog):
 * the whole key anywhere in a text. Documented in src/api-keys/README.md.
 */
export const SECRET_SCANNER_PATTERN = 'ecgk_[a-z0-9]{12}_[A-Za-z0-9_-]{43}';
const API_KEY_PATTERN = /^ecgk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;

export interface ParsedApiKey {
  keyId: string;
  secret: string;
}

export interface GeneratedApiKey extends ParsedApiKey {
  /** The whole key, shown once. */
  token: string;
  /** What is stored: SHA-256 of the secret part, lower-case hex. */
  secretHash: string;
}

/** `ecgk_<keyId>`: the visible start of a key. */
export const keyPrefix = (keyId: string): string => `${API_KEY_PREFIX}_${keyId}`;

/** A new key id: 12 characters drawn uniformly from [a-z0-9] (randomInt avoids modulo bias). */
export function generateKeyId(): string {
  return Array.from({ length: KEY_ID_LENGTH }, () => KEY_ID_ALPHABET[randomInt(KEY_ID_ALPHABET.length)]).join(
    '',
  );
}

/** A new key: fresh id and 256-bit secret, the whole token and the hash to store. */
export function generateApiKey(): GeneratedApiKey {
  const keyId = generateKeyId();
  const secret = randomBytes(SECRET_BYTES).toString('base64url');
  return { keyId, secret, token: `${keyPrefix(keyId)}_${secret}`, secretHash: hashSecret(secret) };
}

/**
 * The key id and secret of a presented key, or null when it is not a key of this format (wrong
 * prefix, length or alphabet). Only the shape is checked here: nothing says whether it exists.
 */
export function parseApiKey(presented: unknown): ParsedApiKey | null {
  // Length first: the regex never runs on arbitrarily long input.
  if (typeof presented !== 'string' || presented.length !== API_KEY_LENGTH) return null;
  const match = API_KEY_PATTERN.exec(presented);
  return match ? { keyId: match[1], secret: match[2] } : null;
}

/**
 * SHA-256 of the secret part, as lower-case hex. A fast, unsalted hash is right here, unlike for
 * passwords: the secret is 32 bytes from the CSPRNG (256 bits of entropy), so the stored hash
 * cannot be brute-forced or looked up in a precomputed table, and slow hashes (scrypt, bcrypt,
 * argon2) exist to protect low-entropy human passwords, at a cost every gateway request would pay.
 * See NIST SP 800-63B §5.1.1.2 (salted, costly hashing is for memorized secrets) and OWASP's
 * Password Storage Cheat Sheet (which applies to passwords, not random tokens).
 */
export function hashSecret(secret: string): string {
  return hash('sha256', secret, 'hex');
}

/**
 * Whether `secret` hashes to `storedHash` (hex), compared in constant time (crypto.timingSafeEqual
 * on the two 32-byte digests), so the time taken says nothing about how much of the hash matched.
 */
export function secretMatches(secret: string, storedHash: string): boolean {
  // One-shot (crypto.hash): every gateway request hashes its key, and a Hash object costs more.
  const presented = hash('sha256', secret, 'buffer');
  const stored = Buffer.from(storedHash, 'hex');
  // A damaged stored value (not 64 hex digits) still takes one comparison of equal lengths.
  if (stored.length !== presented.length) {
    timingSafeEqual(presented, presented);
    return false;
  }
  return timingSafeEqual(presented, stored);
}
