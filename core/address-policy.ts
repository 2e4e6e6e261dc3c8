import ipaddr from 'ipaddr.js';
import { AddressRefusedError } from './errors.ts';

// Ranges no allowlist can open: connecting to them reaches "this host" or many hosts.
const NEVER = new Set(['unspecified', 'broadcast', 'multicast']);

/** One range the policy refuses: ipaddr.js's name for it, as a CIDR. */
export interface RefusedRange {
  range: string;
  cidr: string;
  /** In NEVER: refused even when the allowlist names it. */
  never: boolean;
}

type RangeTable = Record<
  string,
  [ipaddr.IPv4 | ipaddr.IPv6, number] | Array<[ipaddr.IPv4 | ipaddr.IPv6, number]>
>;

/**
 * Every range checkAddress refuses (all but ipaddr.js's "unicast"), read from the table that
 * `range()` itself consults, so a firewall built from this list (runtimes/egress-network.ts)
 * and the HTTP jobs' check cannot drift apart.
 */
export function refusedRanges(kind: 'ipv4' | 'ipv6'): RefusedRange[] {
  // SpecialRanges is public in ipaddr.js (range() and subnetMatch read it) but not in its types.
  const proto = (kind === 'ipv4' ? ipaddr.IPv4.prototype : ipaddr.IPv6.prototype) as unknown as {
    SpecialRanges: RangeTable;
  };
  const out: RefusedRange[] = [];
  for (const [range, value] of Object.entries(proto.SpecialRanges)) {
    const subnets = Array.isArray(value[0]) ? (value as Array<[ipaddr.IPv4 | ipaddr.IPv6, number]>) : [value];
    for (const [address, bits] of subnets as Array<[ipaddr.IPv4 | ipaddr.IPv6, number]>) {
      out.push({ range, cidr: `${address.toString()}/${bits}`, never: NEVER.has(range) });
    }
  }
  return out;
}

const HOSTNAME =
  /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)*\.?$/i;

export function isAllowlistEntry(entry: string): boolean {
  if (entry.includes('/')) {
    try {
      ipaddr.parseCIDR(entry);
      return true;
    } catch {
      return false;
    }
  }
  return ipaddr.isValid(entry) || HOSTNAME.test(entry);
}

/** An IP address or a CIDR, no host names (TRUST_PROXY: a proxy is known by its address). */
export function isAddressOrCidr(entry: string): boolean {
  return entry.includes('/') ? isAllowlistEntry(entry) : ipaddr.isValid(entry);
}

/**
 * True for `localhost` and every loopback address (127.0.0.0/8, ::1, ::ffff:127.x): a listener
 * there is reachable only from this machine. A host name other than localhost may resolve
 * anywhere, so it is not loopback.
 */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost') return true;
  return ipaddr.isValid(bare) && ipaddr.process(bare).range() === 'loopback';
}

export interface AddressPolicyOptions {
  /** ALLOW_EXTERNAL_REQUESTS: public unicast addresses may be reached. Default false. */
  allowExternal: boolean;
  /** HTTP_JOBS_ALLOWLIST entries: host names, IPs or CIDRs reachable even when private. */
  allowlist: readonly string[];
}

/**
 * Decides whether an HTTP job may talk to a host. Only ipaddr.js's "unicast" range
 * counts as public: every other range it names (loopback, private, CGNAT, link-local
 * with the cloud metadata address, ULA with fd00:ec2::254, IPv4-mapped, NAT64, 6to4,
 * reserved, ...) is private unless the allowlist names it. Deny by default means a
 * range we forgot is refused, not reached.
 */
export class AddressPolicy {
  readonly #allowExternal: boolean;
  readonly #hosts: Set<string>;
  readonly #cidrs: Array<[ipaddr.IPv4 | ipaddr.IPv6, number]>;

  constructor(options: AddressPolicyOptions) {
    this.#allowExternal = options.allowExternal;
    this.#hosts = new Set();
    this.#cidrs = [];
    for (const entry of options.allowlist) {
      if (entry.includes('/')) this.#cidrs.push(ipaddr.parseCIDR(entry));
      else if (ipaddr.isValid(entry)) {
        const ip = ipaddr.parse(entry);
        this.#cidrs.push([ip, ip.kind() === 'ipv4' ? 32 : 128]);
      } else this.#hosts.add(entry.toLowerCase().replace(/\.$/, ''));
    }
  }

  /** Checks what can be known before DNS: the scheme and, for IP literals, the address. */
  checkUrl(url: URL): void {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new AddressRefusedError(
        `Only http and https URLs may be fetched, not ${url.protocol.replace(':', '')}.`,
      );
    }
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (ipaddr.isValid(host)) this.checkAddress(host, host);
  }

  /** Checks one resolved address for a host name; throws AddressRefusedError when refused. */
  checkAddress(address: string, hostname: string): void {
    const ip = ipaddr.parse(address);
    const range = ip.range();
    if (NEVER.has(range)) {
      throw new AddressRefusedError(
        `${hostname} resolves to ${address} (${range}), which HTTP jobs may never reach.`,
      );
    }
    if (this.#allowlisted(ip, hostname)) return;
    if (range === 'unicast') {
      if (this.#allowExternal) return;
      throw new AddressRefusedError(
        `${hostname} is a public address and ALLOW_EXTERNAL_REQUESTS is not yes; allow it there or in HTTP_JOBS_ALLOWLIST.`,
      );
    }
    throw new AddressRefusedError(
      `${hostname} resolves to ${address} (${range}), a private address not in HTTP_JOBS_ALLOWLIST.`,
    );
  }

  #allowlisted(ip: ipaddr.IPv4 | ipaddr.IPv6, hostname: string): boolean {
    if (this.#hosts.has(hostname.toLowerCase().replace(/\.$/, ''))) return true;
    return this.#cidrs.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net, bits));
  }
}
