import { randomBytes } from 'node:crypto';

import { parseCipherKeys, SecretCipherService } from './secret-cipher.service';

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
    expect(() => sut.decrypt(encrypted, 'org:2:client_secret')).toThrow();
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

  it('rejects malformed key specs', () => {
    expect(() => parseCipherKeys('k1:short')).toThrow(/32 bytes/);
    expect(() =>
      parseCipherKeys(`${k1},${k1.replace(/:.*/, ':' + randomBytes(32).toString('base64'))}`),
    ).toThrow(/duplicate/);
  });
});
