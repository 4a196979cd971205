import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

import { DomainError, ErrorCode } from 'src/common/errors/domain-error';

/** One AES-256 key with the id stored beside every ciphertext it makes. */
export interface CipherKey {
  id: string;
  key: Buffer;
}

const VERSION = 'v1';
const IV_BYTES = 12; // NIST SP 800-38D: 96-bit IVs for GCM
const TAG_BYTES = 16;

/** Parses `id:base64key[,id:base64key…]`; the first key encrypts, every key decrypts. */
export function parseCipherKeys(spec: string): CipherKey[] {
  const keys = spec
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => {
      const [id, b64] = part.split(':');
      const key = Buffer.from(b64 ?? '', 'base64');
      if (!id || key.length !== 32) {
        throw new Error('ENCRYPTION_KEYS: every key must be id:base64 of 32 bytes');
      }
      return { id, key };
    });
  if (keys.length === 0) throw new Error('ENCRYPTION_KEYS: no key given');
  if (new Set(keys.map((k) => k.id)).size !== keys.length) {
    throw new Error('ENCRYPTION_KEYS: duplicate key id');
  }
  return keys;
}

/**
 * Encrypts secrets at rest (client secrets, tokens) with AES-256-GCM.
 *
 * Ciphertext format: `v1.<keyId>.<base64url(iv ‖ ciphertext ‖ tag)>`. The key id lets keys rotate:
 * put the new key first in ENCRYPTION_KEYS, keep the old ones after it until re-encrypted.
 * `context` is bound as GCM additional data (for example `organization:<id>:client_secret`), so a
 * ciphertext copied into another row or column fails to decrypt instead of being accepted.
 */
export class SecretCipherService {
  private readonly byId: Map<string, Buffer>;

  constructor(private readonly keys: CipherKey[]) {
    if (keys.length === 0) throw new Error('SecretCipherService needs at least one key');
    this.byId = new Map(keys.map((k) => [k.id, k.key]));
  }

  get currentKeyId(): string {
    return this.keys[0].id;
  }

  encrypt(plaintext: string, context: string): string {
    const { id, key } = this.keys[0];
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `${VERSION}.${id}.${Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url')}`;
  }

  /**
   * The plaintext, or a DomainError SECRET_UNREADABLE (500): the ciphertext's key is no longer in
   * ENCRYPTION_KEYS, or the value is damaged or was moved from another record (GCM refuses it).
   */
  decrypt(ciphertext: string, context: string): string {
    const [version, keyId, payload] = ciphertext.split('.');
    if (version !== VERSION || !keyId || !payload) throw unreadable('is not in a format this service wrote');
    const key = this.byId.get(keyId);
    if (!key) {
      throw unreadable(
        `was encrypted with the key "${keyId}", which ENCRYPTION_KEYS does not list: add it back`,
      );
    }
    const raw = Buffer.from(payload, 'base64url');
    if (raw.length < IV_BYTES + TAG_BYTES) throw unreadable('is truncated');
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    try {
      return Buffer.concat([
        decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)),
        decipher.final(),
      ]).toString('utf8');
    } catch (cause) {
      throw unreadable('failed its integrity check (changed, or copied from another record)', cause);
    }
  }

  /** True when the value was encrypted with an older key and should be re-encrypted. */
  needsReencryption(ciphertext: string): boolean {
    return ciphertext.split('.')[1] !== this.currentKeyId;
  }
}

/**
 * A stored secret that cannot be used. It can reach a user (a token exchange, a FHIR call), so it is
 * coded; the message names no secret, only the key id every ciphertext already carries.
 */
function unreadable(problem: string, cause?: unknown): DomainError {
  return new DomainError(ErrorCode.SecretUnreadable, `A stored secret ${problem}.`, { cause });
}
