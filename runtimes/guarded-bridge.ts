import { spawn } from 'node:child_process';
import type Docker from 'dockerode';
import ipaddr from 'ipaddr.js';

/*
 * A Docker bridge network whose containers' traffic passes two chains of ours before anything
 * else: `<chain>-FWD`, jumped to from DOCKER-USER (traffic the host forwards: other networks,
 * other containers, the internet), and `<chain>-IN`, jumped to from INPUT (traffic to any of
 * the host's own addresses, which never crosses FORWARD). What the chains hold is the caller's:
 * runtimes/egress-network.ts (functions that call out) and runtimes/service-network.ts (exec
 * containers that reach only the service proxy) both build on this.
 */

/** Runs a command; rejects when it cannot start or exits non-zero. Resolves with stdout. */
export type Runner = (cmd: string, args: string[], input?: string) => Promise<string>;

export type Family = 'ipv4' | 'ipv6';

export const TOOL = { ipv4: 'iptables', ipv6: 'ip6tables' } as const;
// "Administratively prohibited": connect() fails at once with EHOSTUNREACH (EACCES over IPv6).
export const REJECT = {
  ipv4: '-j REJECT --reject-with icmp-admin-prohibited',
  ipv6: '-j REJECT --reject-with icmp6-adm-prohibited',
} as const;

const BRIDGE_OPTION = 'com.docker.network.bridge.name';

export interface GuardedBridgeOptions {
  docker: Docker;
  /** Docker network name. */
  name: string;
  /** Host interface of the bridge, at most 15 characters. */
  bridge: string;
  /** Prefix of our chains, `<chain>-FWD` and `<chain>-IN`. */
  chain: string;
  /** Docker's `Internal` option: no masquerading, no route out that Docker itself would open. */
  internal?: boolean;
  /**
   * The `-A` lines of both chains for one family. `gateway` is the network's gateway of that
   * family once it is known; before the network exists it is undefined, and the rules written
   * then guard the network while it is created.
   */
  rules(family: Family, gateway: string | undefined): string[];
  /** Default: spawns the command. Tests inject a recorder. */
  run?: Runner;
}

export interface GuardedBridge {
  /** ip6tables rules are written only for a network with IPv6 (Docker disables IPv6 in the others' containers). */
  ipv6: boolean;
  /** The IPv4 gateway: the bridge's address on the host. */
  gateway: string | undefined;
  /** The IPv4 subnet containers get their addresses from. */
  subnet: string | undefined;
}

/** iptables-restore input that empties and refills both chains in one atomic commit. */
export function restoreInput(chain: string, rules: readonly string[]): string {
  return ['*filter', `:${chain}-FWD - [0:0]`, `:${chain}-IN - [0:0]`, ...rules, 'COMMIT', ''].join('\n');
}

/**
 * Creates the network and its rules, or refreshes the rules of the one that exists; safe to
 * call at every start-up and from several processes. The rules go in before the network is
 * created, and when they cannot be written the network is removed (best effort), so a
 * container never joins it unguarded: it fails to start instead. Rules that depend on the
 * gateway are written again once the new network has one.
 */
export async function ensureGuardedBridge(options: GuardedBridgeOptions): Promise<GuardedBridge> {
  const { docker, name, bridge, chain, internal = false } = options;
  const run = options.run ?? spawnRunner;

  const existing = await inspectNetwork(docker, name);
  if (
    existing &&
    (existing.Driver !== 'bridge' ||
      existing.Options?.[BRIDGE_OPTION] !== bridge ||
      (internal && existing.Internal !== true))
  ) {
    throw new Error(
      `Docker network ${name} exists but is not ${internal ? 'an internal bridge' : 'a bridge'} on interface ${bridge}, so its traffic cannot be filtered; remove it (docker network rm ${name}) and start again.`,
    );
  }
  const ipv6 = existing?.EnableIPv6 ?? false;
  const families = ipv6 ? (['ipv4', 'ipv6'] as const) : (['ipv4'] as const);
  const written = new Map<Family, string[]>();
  try {
    for (const family of families) {
      const rules = options.rules(family, existing ? gatewayOf(existing, family) : undefined);
      await applyRules(run, TOOL[family], bridge, chain, rules);
      written.set(family, rules);
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
  if (existing) return { ipv6, ...ipv4Of(existing) };

  await docker
    .createNetwork({
      Name: name,
      Driver: 'bridge',
      CheckDuplicate: true,
      ...(internal ? { Internal: true } : {}),
      Labels: { dockhand: '1' },
      Options: { [BRIDGE_OPTION]: bridge, 'com.docker.network.bridge.enable_icc': 'false' },
    })
    .catch((err: { statusCode?: number }) => {
      if (err.statusCode !== 409) throw err; // another process made it first
    });
  const created = await inspectNetwork(docker, name);
  const { gateway, subnet } = created ? ipv4Of(created) : { gateway: undefined, subnet: undefined };
  const rules = options.rules('ipv4', gateway);
  if (rules.join('\n') !== written.get('ipv4')?.join('\n')) {
    // The chains already hold the rules written before the network existed, so the network
    // is guarded whether or not this refill succeeds; a failure still fails the start-up.
    await run(`${TOOL.ipv4}-restore`, ['-w', '--noflush'], restoreInput(chain, rules));
  }
  return { ipv6, gateway, subnet };
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
export async function removeGuardedBridge(
  options: Pick<GuardedBridgeOptions, 'docker' | 'name' | 'bridge' | 'chain' | 'run'>,
): Promise<void> {
  const { docker, name, bridge, chain } = options;
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

/** One address as a CIDR of itself, in iptables' canonical form. */
export function hostCidr(ip: string): string {
  const address = ipaddr.parse(ip);
  return `${address.toString()}/${address.kind() === 'ipv4' ? 32 : 128}`;
}

interface NetworkInfo {
  Driver: string;
  EnableIPv6?: boolean;
  Internal?: boolean;
  Options?: Record<string, string>;
  IPAM?: { Config?: Array<{ Gateway?: string; Subnet?: string }> };
}

function gatewayOf(network: NetworkInfo, family: Family): string | undefined {
  return network.IPAM?.Config?.map((c) => c.Gateway).find(
    (ip): ip is string => !!ip && ipaddr.isValid(ip) && ipaddr.parse(ip).kind() === family,
  );
}

function ipv4Of(network: NetworkInfo): { gateway: string | undefined; subnet: string | undefined } {
  const subnet = network.IPAM?.Config?.map((c) => c.Subnet).find(
    (cidr): cidr is string =>
      !!cidr && ipaddr.isValidCIDR(cidr) && ipaddr.parseCIDR(cidr)[0].kind() === 'ipv4',
  );
  return { gateway: gatewayOf(network, 'ipv4'), subnet };
}

async function inspectNetwork(docker: Docker, name: string): Promise<NetworkInfo | undefined> {
  try {
    return (await docker.getNetwork(name).inspect()) as NetworkInfo;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return undefined;
    throw err;
  }
}

export const spawnRunner: Runner = (cmd, args, input) =>
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
