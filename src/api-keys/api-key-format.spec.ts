import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { redactSecretPatterns } from 'src/logging/redact';

import {
  API_KEY_LENGTH,
  generateApiKey,
  generateKeyId,
  hashSecret,
  keyPrefix,
  parseApiKey,
  SECRET_SCANNER_PATTERN,
  secretMatches,
} from './api-key-format';

describe('API key format', () => {
  it('is ecgk_, a 12-character id of [a-z0-9], _, and 43 characters of base64url (32 bytes)', () => {
    for (let i = 0; i < 200; i++) {
      const sut = generateApiKey();
      expect(sut.token).toMatch(/^ecgk_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
      expect(sut.token).toHaveLength(API_KEY_LENGTH);
      expect(sut.token).toBe(`ecgk_${sut.keyId}_${sut.secret}`);
      expect(Buffer.from(sut.secret, 'base64url')).toHaveLength(32);
      expect(sut.token.startsWith(keyPrefix(sut.keyId))).toBe(true);
    }
  });

  it('draws new ids and secrets every time', () => {
    const keys = Array.from({ length: 1000 }, () => generateApiKey());
    expect(new Set(keys.map((k) => k.keyId)).size).toBe(1000);
    expect(new Set(keys.map((k) => k.secret)).size).toBe(1000);
  });

  it('draws key ids from the whole alphabet', () => {
    const seen = new Set(Array.from({ length: 500 }, () => generateKeyId()).join(''));
    expect([...seen].sort().join('')).toBe('0123456789abcdefghijklmnopqrstuvwxyz');
  });

  it('parses its own keys back into id and secret, including secrets with - and _', () => {
    const sut = generateApiKey();
    expect(parseApiKey(sut.token)).toEqual({ keyId: sut.keyId, secret: sut.secret });
    const odd = `ecgk_abc123def456_${'_-'.repeat(21)}A`;
    expect(parseApiKey(odd)).toEqual({ keyId: 'abc123def456', secret: `${'_-'.repeat(21)}A` });
  });

  it.each([
    ['another prefix', (t: string) => t.replace(/^ecgk_/, 'ecgx_')],
    ['an upper-case key id', (t: string) => t.replace(/^ecgk_./, 'ecgk_A')],
    ['a shorter secret', (t: string) => t.slice(0, -1)],
    ['a longer secret', (t: string) => `${t}A`],
    ['a space around it', (t: string) => ` ${t}`],
    ['"Bearer " still in front', (t: string) => `Bearer ${t}`],
    ['padding', (t: string) => `${t.slice(0, -1)}=`],
    ['a character outside base64url', (t: string) => `${t.slice(0, -1)}+`],
    ['a line break', (t: string) => `${t.slice(0, -1)}\n`],
    ['nothing', () => ''],
  ])('refuses %s', (_, change) => {
    expect(parseApiKey(change(generateApiKey().token))).toBeNull();
  });

  it('refuses what is not a string', () => {
    for (const value of [undefined, null, 42, {}, ['ecgk_']]) expect(parseApiKey(value)).toBeNull();
  });

  it('stores the SHA-256 of the secret part, in lower-case hex', () => {
    expect(hashSecret('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const sut = generateApiKey();
    expect(sut.secretHash).toBe(createHash('sha256').update(sut.secret).digest('hex'));
    expect(sut.secretHash).toMatch(/^[0-9a-f]{64}$/);
    expect(sut.secretHash).not.toContain(sut.secret);
  });

  it('matches a secret only against its own hash, and never a damaged stored hash', () => {
    const a = generateApiKey();
    const b = generateApiKey();
    expect(secretMatches(a.secret, a.secretHash)).toBe(true);
    expect(secretMatches(b.secret, a.secretHash)).toBe(false);
    expect(secretMatches(a.secret, a.secretHash.toUpperCase())).toBe(true); // hex is case-blind
    expect(secretMatches(a.secret, a.secretHash.slice(0, 62))).toBe(false);
    expect(secretMatches(a.secret, '')).toBe(false);
  });

  it('is found by the secret-scanner pattern the README documents, and by nothing narrower', () => {
    const readme = readFileSync(join(__dirname, 'README.md'), 'utf8');
    expect(readme).toContain(SECRET_SCANNER_PATTERN);
    const scanner = new RegExp(SECRET_SCANNER_PATTERN, 'g');
    const keys = Array.from({ length: 50 }, () => generateApiKey().token);
    const text = `config:\n  key: "${keys.join('"\n  key: "')}"\n`;
    expect(text.match(scanner)).toEqual(keys);
  });

  it('is redacted from log lines, keeping the public prefix', () => {
    const sut = generateApiKey();
    const line = JSON.stringify({ msg: `refused Bearer ${sut.token}`, err: { message: sut.token } });
    const redacted = redactSecretPatterns(line);
    expect(redacted).not.toContain(sut.secret);
    expect(redacted).toContain(`${keyPrefix(sut.keyId)}_[redacted]`);
    expect(JSON.parse(redacted)).toEqual({
      msg: `refused Bearer ${keyPrefix(sut.keyId)}_[redacted]`,
      err: { message: `${keyPrefix(sut.keyId)}_[redacted]` },
    });
  });
});
