import { spawn } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { readFile } from 'node:fs/promises';
import type Docker from 'dockerode';
import ipaddr from 'ipaddr.js';
import { refusedRanges } from '../core/address-policy.ts';

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

/** Runs a command; rejects when it cannot start or exits non-zero. Resolves with stdout. */
export type Runner = (cmd: string, args: string[], input?: string) => Promise<string>;

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
const BRIDGE_OPTION = 'com.docker.network.bridge.name';

type Family = 'ipv4' | 'ipv6';
const TOOL = { ipv4: 'iptables', ipv6: 'ip6tables' } as const;
// "Administratively prohibited": connect() fails at once with EHOSTUNREACH (EACCES over IPv6).
const REJECT = {
  ipv4: '-j REJECT --reject-with icmp-admin-prohibited',
  ipv6: '-j REJECT --reject-with icmp6-adm-prohibited',
} as const;

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

/** iptables-restore input that empties and refills both chains in one atomic commit. */
export function restoreInput(chain: string, rules: readonly string[]): string {
  return ['*filter', `:${chain}-FWD - [0:0]`, `:${chain}-IN - [0:0]`, ...rules, 'COMMIT', ''].join('\n');
}

/**
 * Creates the egress network and its rules, or refreshes the rules of the one that exists;
 * safe to call at every start-up and from several workers. The rules go in before the network
 * is created, and when they cannot be written the network is removed (best effort), so a
 * container never joins it unguarded: it fails to start instead.
 */
export async function ensureEgressNetwork(options: EgressNetworkOptions): Promise<EgressNetwork> {
  const { docker, name = EGRESS_NETWORK, bridge = EGRESS_BRIDGE, chain = EGRESS_CHAIN } = options;
  const run = options.run ?? spawnRunner;
  const dns = options.dns ?? (await hostNameservers());
  const { cidrs, unresolved } = await allowCidrs(options.allow, options.resolve ?? resolveHost);

  const existing = await inspectNetwork(docker, name);
  if (existing && (existing.Driver !== 'bridge' || existing.Options?.[BRIDGE_OPTION] !== bridge)) {
    throw new Error(
      `Docker network ${name} exists but is not a bridge on interface ${bridge}, so its traffic cannot be filtered; remove it (docker network rm ${name}) and start again.`,
    );
  }
  const ipv6 = existing?.EnableIPv6 ?? false;
  try {
    for (const family of ipv6 ? (['ipv4', 'ipv6'] as const) : (['ipv4'] as const)) {
      const rules = egressRules({
        chain,
        family,
        allow: cidrs.filter((c) => ipaddr.parseCIDR(c)[0].kind() === family),
        dns: dns.filter((ip) => ipaddr.parse(ip).kind() === family),
      });
      await applyRules(run, TOOL[family], bridge, chain, rules);
    }
  } catch (err) {
    if (existing)
      await docker
        .getNetwork(name)
        .remove()
        // A network that is not there any more is what removal wanted.
        .catch(() => {});
    throw err;
  }
  if (!existing) {
    await docker
      .createNetwork({
        Name: name,
        Driver: 'bridge',
        CheckDuplicate: true,
        Labels: { dockhand: '1' },
        Options: { [BRIDGE_OPTION]: bridge, 'com.docker.network.bridge.enable_icc': 'false' },
      })
      .catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 409) throw err; // another worker made it first
      });
  }
  return { name, bridge, ipv6, unresolved };
}

async function applyRules(run: Runner, tool: string, bridge: string, chain: string, rules: string[]) {
  await run(`${tool}-restore`, ['-w', '--noflush'], restoreInput(chain, rules));
  // DOCKER-USER is where Docker wants ours: it keeps it first in FORWARD. Without it (dockerd
  // not managing this family), nothing reorders FORWARD, so the top of FORWARD holds.
  const forward = await run(tool, ['-w', '-S', 'DOCKER-USER']).then(
    () => 'DOCKER-USER',
    () => 'FORWARD',
  );
  const jumps: Array<[string, string]> = [
    [forward, `${chain}-FWD`],
    ['INPUT', `${chain}-IN`],
  ];
  for (const [parent, target] of jumps) {
    const jump = ['-i', bridge, '-j', target];
    await run(tool, ['-w', '-C', parent, ...jump]).catch(() => run(tool, ['-w', '-I', parent, ...jump]));
  }
}

/** Removes the network (its containers must be gone), the jumps and both chains. Idempotent. */
export async function removeEgressNetwork(
  options: Pick<EgressNetworkOptions, 'docker' | 'name' | 'bridge' | 'chain' | 'run'>,
): Promise<void> {
  const { docker, name = EGRESS_NETWORK, bridge = EGRESS_BRIDGE, chain = EGRESS_CHAIN } = options;
  const run = options.run ?? spawnRunner;
  await docker
    .getNetwork(name)
    .remove()
    .catch((err: { statusCode?: number }) => {
      if (err.statusCode !== 404) throw err;
    });
  for (const tool of Object.values(TOOL)) {
    const jumps: Array<[string, string]> = [
      ['DOCKER-USER', `${chain}-FWD`],
      ['FORWARD', `${chain}-FWD`],
      ['INPUT', `${chain}-IN`],
    ];
    for (const [parent, target] of jumps) {
      // -D removes one copy; loop in case a copy was ever added by hand. Fails once none is left.
      for (let i = 0; i < 10; i++) {
        const removed = await run(tool, ['-w', '-D', parent, '-i', bridge, '-j', target]).then(
          () => true,
          () => false,
        );
        if (!removed) break;
      }
    }
    for (const target of [`${chain}-FWD`, `${chain}-IN`]) {
      // A chain that does not exist needs no flushing or deleting.
      await run(tool, ['-w', '-F', target]).catch(() => {});
      await run(tool, ['-w', '-X', target]).catch(() => {});
    }
  }
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

function hostCidr(ip: string): string {
  const address = ipaddr.parse(ip);
  return `${address.toString()}/${address.kind() === 'ipv4' ? 32 : 128}`;
}

async function inspectNetwork(docker: Docker, name: string) {
  try {
    return (await docker.getNetwork(name).inspect()) as {
      Driver: string;
      EnableIPv6?: boolean;
      Options?: Record<string, string>;
    };
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return undefined;
    throw err;
  }
}

const spawnRunner: Runner = (cmd, args, input) =>
  new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
    });
    child.on('error', reject);
    child.stdin.on('error', () => {}); // a command that reads no input may exit before we end it
    child.on('close', (code) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.trim()}`));
    });
    child.stdin.end(input ?? '');
  });
