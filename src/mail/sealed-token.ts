import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';

const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * A key for one kind of link, derived from a session secret (SESSION_SECRET, or the generated one
 * in DATA_DIR) with a label of its own, so it is neither the cookie key nor the CSRF key, and
 * operators manage one secret.
 */
export function derivedKey(sessionSecret: string, label: string): Buffer {
  return createHmac('sha256', sessionSecret).update(label).digest();
}

/**
 * `<version>.<base64url(iv ‖ AES-256-GCM(plain) ‖ tag)>`: opaque (nothing in it is readable) and
 * authenticated (it cannot be forged or altered without the key; the version is bound as AAD). A
 * fresh random IV per token.
 */
export function sealToken(version: string, plain: Buffer, key: Buffer): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(version));
  const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  return `${version}.${sealed.toString('base64url')}`;
}

/** The plain bytes of a token sealed with one of `keys` (rotation), or null for anything else. */
export function openToken(
  version: string,
  token: unknown,
  keys: Buffer[],
  plainBytes: number,
): Buffer | null {
  if (typeof token !== 'string' || token.length > 512) return null;
  const [given, body, ...rest] = token.split('.');
  if (given !== version || !body || rest.length > 0 || !/^[A-Za-z0-9_-]+$/.test(body)) return null;
  const sealed = Buffer.from(body, 'base64url');
  if (sealed.length !== IV_BYTES + plainBytes + TAG_BYTES) return null;
  const iv = sealed.subarray(0, IV_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const data = sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES);
  for (const key of keys) {
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv);
      decipher.setAAD(Buffer.from(version));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(data), decipher.final()]);
    } catch {
      // not this key (or altered)
    }
  }
  return null;
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const uuidBytes = (uuid: string): Buffer => Buffer.from(uuid.replaceAll('-', ''), 'hex');

export const uuidText = (bytes: Buffer): string => {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
};
