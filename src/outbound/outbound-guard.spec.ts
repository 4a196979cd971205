import type { LookupAddress } from 'node:dns';
import { BlockList } from 'node:net';

import {
  ADDRESS_BLOCKED,
  blockedAddressError,
  guardedLookup,
  isBlockedAddress,
  literalAddressRefusal,
  parseNetworks,
} from './outbound-guard';

const none = new BlockList();

describe('isBlockedAddress', () => {
  it.each([
    '127.0.0.1',
    '10.1.2.3',
    '172.20.0.5',
    '192.168.1.10',
    '169.254.169.254', // cloud metadata
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '::1',
    '::',
    'fd12:3456::1',
    'fe80::1',
    '::ffff:10.0.0.1', // IPv4-mapped
    '::ffff:127.0.0.1',
    '64:ff9b::a9fe:a9fe', // NAT64 of 169.254.169.254
    '2002:a9fe:a9fe::', // 6to4 of 169.254.169.254
    '::a9fe:a9fe', // IPv4-compatible
  ])('refuses %s', (address) => {
    expect(isBlockedAddress(address, none)).toBe(true);
  });

  it.each(['8.8.8.8', '151.101.1.69', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])(
    'allows the public address %s',
    (address) => {
      expect(isBlockedAddress(address, none)).toBe(false);
    },
  );

  it('lets through the networks an operator allowed, and only those', () => {
    const allowed = parseNetworks('10.20.0.0/16, fd00:abcd::/32');
    expect(isBlockedAddress('10.20.3.4', allowed)).toBe(false);
    expect(isBlockedAddress('10.21.0.1', allowed)).toBe(true);
    expect(isBlockedAddress('fd00:abcd::5', allowed)).toBe(false);
    expect(isBlockedAddress('169.254.169.254', allowed)).toBe(true);
  });
});

describe('parseNetworks', () => {
  it('names the entry that is not a CIDR network', () => {
    expect(() => parseNetworks('10.0.0.0/8, example.org/24')).toThrow('"example.org/24" is not a network');
    expect(() => parseNetworks('10.0.0.0/33')).toThrow('"10.0.0.0/33"');
    expect(() => parseNetworks('10.0.0.0')).toThrow('"10.0.0.0"');
  });

  it('reads an empty value as no networks', () => {
    expect(parseNetworks('').check('10.0.0.1', 'ipv4')).toBe(false);
  });
});

describe('literalAddressRefusal', () => {
  it('refuses hosts written as blocked IP addresses (sockets skip the lookup for them)', () => {
    expect(literalAddressRefusal('169.254.169.254', none)?.code).toBe(ADDRESS_BLOCKED);
    expect(literalAddressRefusal('[::1]', none)?.message).toMatch(
      /^\[::1\] is in a private or reserved network/,
    );
  });

  it('leaves names (checked at lookup) and public or allowed addresses alone', () => {
    expect(literalAddressRefusal('fhir.example.org', none)).toBeNull();
    expect(literalAddressRefusal('8.8.8.8', none)).toBeNull();
    expect(literalAddressRefusal('10.20.0.1', parseNetworks('10.20.0.0/16'))).toBeNull();
  });
});

describe('guardedLookup', () => {
  const lookup = (host: string, all: boolean, allowed = none) =>
    new Promise<{ err: NodeJS.ErrnoException | null; address: string | LookupAddress[] }>((resolve) =>
      guardedLookup(allowed)(host, { all }, (err, address) => resolve({ err, address })),
    );

  it('refuses a name that resolves to loopback, saying which host and address, and what to do', async () => {
    const { err } = await lookup('localhost', false);
    expect(err?.code).toBe(ADDRESS_BLOCKED);
    expect(err?.message).toMatch(/^localhost is in a private or reserved network/);
    expect(err?.message).not.toMatch(/127\.0\.0\.1|::1/); // admins see no resolved address
    expect((err as { address?: string }).address).toMatch(/^(127\.0\.0\.1|::1)$/);
    expect(err?.message).toContain('OUTBOUND_ALLOWED_NETWORKS');
    expect(blockedAddressError(new TypeError('fetch failed', { cause: err }))).toBe(err);
  });

  it('answers like dns.lookup when the address is allowed, one address or all', async () => {
    const allowed = parseNetworks('127.0.0.0/8, ::1/128');
    const one = await lookup('127.0.0.1', false, allowed);
    expect(one).toEqual({ err: null, address: '127.0.0.1' });
    const all = await lookup('127.0.0.1', true, allowed);
    expect(all).toEqual({ err: null, address: [{ address: '127.0.0.1', family: 4 }] });
  });
});
