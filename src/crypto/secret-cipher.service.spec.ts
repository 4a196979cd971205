import { randomBytes } from 'node:crypto';

import { DomainError, ErrorCode } from 'src/common/errors/domain-error';

import { parseCipherKeys, SecretCipherService } from './secret-cipher.service';

/** The error `decrypt` throws (it can reach a user, so it is coded). */
function decryptError(work: () => unknown): DomainError {
  try {
    work();
  } catch (error) {
    return error as DomainError;
  }
  throw new Error('decrypt succeeded');
}

const keySpec = (id: string): string => `${id}:${randomBytes(32).toString('base64')}`;

describe('SecretCipherService', () => {
  const k1 = keySpec('k1');
  const k0 = keySpec('k0');

  it('round-trips and never leaves the plaintext in the ciphertext', () => {
    const sut = new SecretCipherService(parseCipherKeys(k1));
    const secret = 'super-secret-client-secret-value';
    const encrypted = sut.encrypt(secret, 'org:1:client_secret');
    expect(encrypted).toMatch(/^v1\.k1\./);
    expect(encrypted).not.toContain(secret);
    expect(encrypted).not.toContain(Buffer.from(secret).toString('base64'));
    expect(sut.decrypt(encrypted, 'org:1:client_secret')).toBe(secret);
  });

  it('uses a fresh IV each time', () => {
    const sut = new SecretCipherService(parseCipherKeys(k1));
    expect(sut.encrypt('same', 'c')).not.toBe(sut.encrypt('same', 'c'));
  });

  it('refuses a ciphertext moved to another context', () => {
    const sut = new SecretCipherService(parseCipherKeys(k1));
    const encrypted = sut.encrypt('value', 'org:1:client_secret');
    expect(() => sut.decrypt(encrypted, 'org:2:client_secret')).toThrow(/integrity check/);
  });

  it('detects tampering', () => {
    const sut = new SecretCipherService(parseCipherKeys(k1));
    const encrypted = sut.encrypt('value', 'c');
    const raw = Buffer.from(encrypted.split('.')[2], 'base64url');
    raw[14] ^= 1;
    expect(() => sut.decrypt(`v1.k1.${raw.toString('base64url')}`, 'c')).toThrow();
  });

  it('decrypts with an older key after rotation and encrypts with the first', () => {
    const old = new SecretCipherService(parseCipherKeys(k0));
    const encrypted = old.encrypt('value', 'c');
    const rotated = new SecretCipherService(parseCipherKeys(`${k1},${k0}`));
    expect(rotated.decrypt(encrypted, 'c')).toBe('value');
    expect(rotated.needsReencryption(encrypted)).toBe(true);
    expect(rotated.encrypt('value', 'c')).toMatch(/^v1\.k1\./);
  });

  it('names a missing key id', () => {
    const encrypted = new SecretCipherService(parseCipherKeys(k0)).encrypt('value', 'c');
    expect(() => new SecretCipherService(parseCipherKeys(k1)).decrypt(encrypted, 'c')).toThrow(/"k0"/);
  });

  it('says SECRET_UNREADABLE (500) for every ciphertext it cannot read, naming no secret', () => {
    const sut = new SecretCipherService(parseCipherKeys(k1));
    const encrypted = sut.encrypt('value', 'c');
    const [, , payload] = encrypted.split('.');
    for (const [ciphertext, said] of [
      ['plain text', /not in a format/],
      [`v1.k1.${payload.slice(0, 10)}`, /truncated/],
      [encrypted.replace('v1.k1.', 'v1.k9.'), /"k9".*ENCRYPTION_KEYS/],
      [encrypted, /integrity check/], // with the wrong context below
    ] as const) {
      const error = decryptError(() => sut.decrypt(ciphertext, 'another context'));
      expect(error).toBeInstanceOf(DomainError);
      expect(error.code).toBe(ErrorCode.SecretUnreadable);
      expect(error.message).toMatch(said);
      expect(error.message).not.toContain('value');
    }
  });

  it('rejects malformed key specs', () => {
    expect(() => parseCipherKeys('k1:short')).toThrow(/32 bytes/);
    expect(() =>
      parseCipherKeys(`${k1},${k1.replace(/:.*/, ':' + randomBytes(32).toString('base64'))}`),
    ).toThrow(/duplicate/);
  });
});
