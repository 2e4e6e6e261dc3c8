import { lookup } from 'node:dns/promises';
import { readFile } from 'node:fs/promises';
import type Docker from 'dockerode';
import ipaddr from 'ipaddr.js';
import { refusedRanges } from '../core/address-policy.ts';
import {
  ensureGuardedBridge,
  type Family,
  hostCidr,
  REJECT,
  type Runner,
  removeGuardedBridge,
} from './guarded-bridge.ts';

export type { Runner } from './guarded-bridge.ts';
export { restoreInput } from './guarded-bridge.ts';

/*
 * The network functions with `"network": "egress"` join. Docker's default bridge lets a container
 * reach the cloud metadata address, private networks and the host's own ports; this bridge is
 * Docker's too, but a chain of ours in DOCKER-USER (forwarded traffic) and one jumped to from
 * INPUT (traffic to any of the host's own addresses, which never crosses FORWARD) REJECT what
 * core/address-policy.ts refuses HTTP jobs, except what HTTP_JOBS_ALLOWLIST opens.
 *
 * Why a firewall and not an egress proxy applying AddressPolicy: a proxy only sees what a
 * function chooses to send through it (HTTP_PROXY is a convention; raw sockets, UDP, DNS and
 * most SDKs' non-HTTP clients ignore it), so the network would still need these rules to stop
 * the bypass. The kernel sees every packet, for every protocol, and refuses it at once.
 */

export interface EgressNetworkOptions {
  docker: Docker;
  /** HTTP_JOBS_ALLOWLIST entries (IPs, CIDRs, host names): refused ranges egress may still reach. */
  allow: readonly string[];
  /** Docker network name. Default `dockhand-egress`. */
  name?: string;
  /** Host interface of the bridge, at most 15 characters. Default `dh-egress0`. */
  bridge?: string;
  /** Prefix of our chains, `<chain>-FWD` and `<chain>-IN`. Default `DOCKHAND-EGRESS`. */
  chain?: string;
  /**
   * Resolvers reachable on port 53 only, even when private: Docker's embedded DNS forwards a
   * container's queries from inside the container, so they cross these rules. Default: the
   * non-loopback nameservers of this host's /etc/resolv.conf (Docker's own upstreams).
   */
  dns?: readonly string[];
  /** Default: spawns the command. Tests inject a recorder. */
  run?: Runner;
  /** Resolves an allowlisted host name, once, when the rules are written. Default: the system resolver. */
  resolve?: (host: string) => Promise<string[]>;
}

export interface EgressNetwork {
  name: string;
  bridge: string;
  /** ip6tables rules are written only for a network with IPv6 (Docker disables IPv6 in the others' containers). */
  ipv6: boolean;
  /** Allowlisted host names that did not resolve, so open nothing. */
  unresolved: string[];
}

export const EGRESS_NETWORK = 'dockhand-egress';
export const EGRESS_BRIDGE = 'dh-egress0';
export const EGRESS_CHAIN = 'DOCKHAND-EGRESS';

export interface RuleInput {
  chain: string;
  family: Family;
  /** CIDRs of this family. */
  allow: readonly string[];
  /** Resolver addresses of this family. */
  dns: readonly string[];
}

/**
 * The `-A` lines of both chains, in order. Forwarded traffic: replies pass, ranges no allowlist
 * can open are refused, allowlisted targets and resolvers on port 53 pass, the other refused
 * ranges are refused, the rest (public unicast) passes. Traffic to the host: the same, except
 * that everything not let through is refused, whatever address of the host it was sent to.
 */
export function egressRules({ chain, family, allow, dns }: RuleInput): string[] {
  const ranges = refusedRanges(family);
  const head = (c: string) => [
    `-A ${c} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`,
    ...ranges.filter((r) => r.never).map((r) => `-A ${c} -d ${r.cidr} ${REJECT[family]}`),
    ...allow.map((cidr) => `-A ${c} -d ${cidr} -j RETURN`),
    ...dns.flatMap((ip) =>
      ['udp', 'tcp'].map((p) => `-A ${c} -d ${hostCidr(ip)} -p ${p} -m ${p} --dport 53 -j RETURN`),
    ),
  ];
  const fwd = `${chain}-FWD`;
  const input = `${chain}-IN`;
  return [
    ...head(fwd),
    ...ranges.filter((r) => !r.never).map((r) => `-A ${fwd} -d ${r.cidr} ${REJECT[family]}`),
    ...head(input),
    `-A ${input} ${REJECT[family]}`,
  ];
}

/**
 * Creates the egress network and its rules, or refreshes the rules of the one that exists;
 * safe to call at every start-up and from several workers. The rules go in before the network
 * is created, and when they cannot be written the network is removed (best effort), so a
 * container never joins it unguarded: it fails to start instead.
 */
export async function ensureEgressNetwork(options: EgressNetworkOptions): Promise<EgressNetwork> {
  const { docker, name = EGRESS_NETWORK, bridge = EGRESS_BRIDGE, chain = EGRESS_CHAIN, run } = options;
  const dns = options.dns ?? (await hostNameservers());
  const { cidrs, unresolved } = await allowCidrs(options.allow, options.resolve ?? resolveHost);
  const { ipv6 } = await ensureGuardedBridge({
    docker,
    name,
    bridge,
    chain,
    run,
    rules: (family) =>
      egressRules({
        chain,
        family,
        allow: cidrs.filter((c) => ipaddr.parseCIDR(c)[0].kind() === family),
        dns: dns.filter((ip) => ipaddr.parse(ip).kind() === family),
      }),
  });
  return { name, bridge, ipv6, unresolved };
}

/** Removes the network (its containers must be gone), the jumps and both chains. Idempotent. */
export async function removeEgressNetwork(
  options: Pick<EgressNetworkOptions, 'docker' | 'name' | 'bridge' | 'chain' | 'run'>,
): Promise<void> {
  const { docker, name = EGRESS_NETWORK, bridge = EGRESS_BRIDGE, chain = EGRESS_CHAIN, run } = options;
  await removeGuardedBridge({ docker, name, bridge, chain, run });
}

/** The nameserver lines of a resolv.conf, less loopback ones (Docker replaces those). */
export function parseNameservers(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(([key, ip]) => key === 'nameserver' && ip && ipaddr.isValid(ip))
    .map(([, ip]) => ipaddr.process(ip as string).toString())
    .filter((ip) => ipaddr.parse(ip).range() !== 'loopback');
}

async function hostNameservers(): Promise<string[]> {
  return parseNameservers(await readFile('/etc/resolv.conf', 'utf8').catch(() => ''));
}

async function resolveHost(host: string): Promise<string[]> {
  return (await lookup(host, { all: true })).map((a) => a.address);
}

/** Allowlist entries as CIDRs in iptables' canonical form; host names resolved once. */
export async function allowCidrs(
  allow: readonly string[],
  resolve: (host: string) => Promise<string[]>,
): Promise<{ cidrs: string[]; unresolved: string[] }> {
  const cidrs: string[] = [];
  const unresolved: string[] = [];
  for (const entry of allow) {
    if (entry.includes('/')) {
      const [address, bits] = ipaddr.parseCIDR(entry);
      const network =
        address.kind() === 'ipv4'
          ? ipaddr.IPv4.networkAddressFromCIDR(entry)
          : ipaddr.IPv6.networkAddressFromCIDR(entry);
      cidrs.push(`${network.toString()}/${bits}`);
    } else if (ipaddr.isValid(entry)) cidrs.push(hostCidr(entry));
    else {
      const addresses = await resolve(entry).catch(() => []);
      if (addresses.length === 0) unresolved.push(entry);
      cidrs.push(...addresses.map(hostCidr));
    }
  }
  return { cidrs: [...new Set(cidrs)], unresolved };
}
