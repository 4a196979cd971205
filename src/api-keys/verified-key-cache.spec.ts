import { VerifiedKey, VerifiedKeyCache } from './verified-key-cache';

const key = (keyId: string): VerifiedKey => ({
  principal: {
    keyId,
    organizationId: '00000000-0000-0000-0000-000000000001',
    name: keyId,
    access: 'read',
    resourceTypes: null,
    userConnections: false,
  },
  secretHash: '0'.repeat(64),
  expiresAt: null,
});

describe('VerifiedKeyCache', () => {
  it('serves a key until the TTL after its read, never at or after it', () => {
    const sut = new VerifiedKeyCache(5000);
    sut.set('a', key('a'), 1000);
    expect(sut.get('a', 1000)?.principal.keyId).toBe('a');
    expect(sut.get('a', 5999)?.principal.keyId).toBe('a');
    expect(sut.get('a', 6000)).toBeUndefined();
    expect(sut.size).toBe(0); // a stale entry is dropped when met
  });

  it('keeps nothing with a TTL of 0', () => {
    const sut = new VerifiedKeyCache(0);
    sut.set('a', key('a'), 1000);
    expect(sut.get('a', 1000)).toBeUndefined();
  });

  it('forgets a key at once', () => {
    const sut = new VerifiedKeyCache(5000);
    sut.set('a', key('a'), 1000);
    sut.delete('a');
    expect(sut.get('a', 1001)).toBeUndefined();
  });

  it("forgets every key of one organization at once, and only that organization's", () => {
    const sut = new VerifiedKeyCache(5000);
    const other = (keyId: string): VerifiedKey => ({
      ...key(keyId),
      principal: { ...key(keyId).principal, organizationId: '00000000-0000-0000-0000-000000000002' },
    });
    sut.set('a', key('a'), 1000);
    sut.set('b', other('b'), 1000);
    sut.set('c', key('c'), 1000);
    expect(sut.deleteOrganization('00000000-0000-0000-0000-000000000001')).toBe(2);
    expect(sut.get('a', 1001)).toBeUndefined();
    expect(sut.get('c', 1001)).toBeUndefined();
    expect(sut.get('b', 1001)?.principal.keyId).toBe('b');
    expect(sut.deleteOrganization('00000000-0000-0000-0000-000000000003')).toBe(0);
    expect(sut.size).toBe(1);
  });

  it('drops the oldest read beyond its size', () => {
    const sut = new VerifiedKeyCache(5000, 2);
    sut.set('a', key('a'), 1);
    sut.set('b', key('b'), 2);
    sut.set('a', key('a'), 3); // read again: now the newest
    sut.set('c', key('c'), 4);
    expect(sut.size).toBe(2);
    expect(sut.get('b', 5)).toBeUndefined();
    expect(sut.get('a', 5)).toBeDefined();
    expect(sut.get('c', 5)).toBeDefined();
  });
});
