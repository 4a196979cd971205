import { lookup as dnsLookup, LookupAddress, LookupOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/**
 * Outbound requests to addresses an administrator typed (an organization's FHIR base URL, and the
 * endpoints its discovery document names) must not reach the service's own network: cloud metadata
 * (169.254.169.254), loopback admin ports, databases. With the `public` policy every connection's
 * resolved address is checked at connect time (so DNS rebinding gets the same answer), and private,
 * loopback, link-local and reserved ranges are refused unless listed in the allowed networks (an
 * organization's on-premises Epic on a private network).
 */

export type OutboundAddressPolicy = 'public' | 'any';

/** The code of the error a refused connection fails with (in `cause` of fetch's TypeError). */
export const ADDRESS_BLOCKED = 'EADDRBLOCKED';

/** IANA special-purpose ranges (RFC 6890 and successors) that a public server never uses. */
const RESERVED_V4: [string, number][] = [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
];
const RESERVED_V6: [string, number][] = [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['::', 96], // IPv4-compatible (deprecated): ::a.b.c.d
  ['64:ff9b::', 96], // NAT64 well-known prefix: reaches any IPv4 address, private ones included
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4: embeds any IPv4 address
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
];

function blockList(ranges: [string, number][], type: 'ipv4' | 'ipv6'): BlockList {
  const list = new BlockList();
  for (const [network, prefix] of ranges) list.addSubnet(network, prefix, type);
  return list;
}

const RESERVED = (() => {
  const list = blockList(RESERVED_V4, 'ipv4');
  for (const [network, prefix] of RESERVED_V6) list.addSubnet(network, prefix, 'ipv6');
  return list;
})();

/** Parses `10.20.0.0/16, fd12::/48` (an empty string is none); throws with the bad entry. */
export function parseNetworks(value: string | undefined): BlockList {
  const list = new BlockList();
  for (const entry of (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [network, prefixText] = entry.split('/');
    const family = isIP(network);
    const prefix = Number(prefixText);
    const max = family === 6 ? 128 : 32;
    if (!family || !Number.isInteger(prefix) || prefix < 0 || prefix > max) {
      throw new Error(`"${entry}" is not a network in CIDR notation (like 10.20.0.0/16)`);
    }
    list.addSubnet(network, prefix, family === 6 ? 'ipv6' : 'ipv4');
  }
  return list;
}

/** The IPv4 address inside an IPv4-mapped IPv6 one (`::ffff:10.0.0.1`), else the address. */
function unmap(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1] : address;
}

/** True when `address` is in a private or reserved range and not in `allowed`. */
export function isBlockedAddress(address: string, allowed: BlockList): boolean {
  const plain = unmap(address);
  const type = isIP(plain) === 6 ? 'ipv6' : 'ipv4';
  return RESERVED.check(plain, type) && !allowed.check(plain, type);
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * A `dns.lookup` replacement for sockets (net/tls `lookup`, undici's `connect.lookup`): resolves,
 * then refuses the connection if any resolved address is blocked, naming the host and address.
 */
export function guardedLookup(allowed: BlockList) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, []);
      const blocked = addresses.find((a) => isBlockedAddress(a.address, allowed));
      if (blocked) return callback(refusal(hostname, blocked.address), []);
      if (options.all) return callback(null, addresses);
      const first = addresses[0];
      return callback(null, first.address, first.family);
    });
  };
}

/**
 * The same check for a host written as an IP address, which sockets connect to without a lookup:
 * the refusal to fail the connection with, or null.
 */
export function literalAddressRefusal(host: string, allowed: BlockList): NodeJS.ErrnoException | null {
  const address = host.replace(/^\[|\]$/g, '');
  if (!isIP(address) || !isBlockedAddress(address, allowed)) return null;
  return refusal(host, address);
}

/**
 * The refusal. Its message, which admins see, names the host but not the address it resolved to
 * (that would let an organization admin map internal names); `address` carries it for the log.
 */
function refusal(hostname: string, address: string): NodeJS.ErrnoException & { address: string } {
  const error = new Error(
    `${hostname} is in a private or reserved network, which this service does not connect to (OUTBOUND_ADDRESS_POLICY=public). If it is the organization's own on-premises server, ask the operator to add its network to OUTBOUND_ALLOWED_NETWORKS.`,
  ) as NodeJS.ErrnoException & { address: string };
  error.code = ADDRESS_BLOCKED;
  error.address = address;
  return error;
}

/** The refusal behind a failed request (fetch puts it in `cause`, axios and sockets throw it), if any. */
export function blockedAddressError(error: unknown): Error | null {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current; depth += 1) {
    if ((current as NodeJS.ErrnoException).code === ADDRESS_BLOCKED) return current as Error;
    current = (current as { cause?: unknown }).cause;
  }
  return null;
}
