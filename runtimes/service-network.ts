import type Docker from 'dockerode';
import {
  ensureGuardedBridge,
  type Family,
  hostCidr,
  REJECT,
  type Runner,
  removeGuardedBridge,
} from './guarded-bridge.ts';

/*
 * The network exec containers join when their request asks for `service_access`: from it they
 * reach the service proxy (api/service-proxy/) on the bridge's gateway address and nothing
 * else: not Redis or any other port of the host, not other containers, not private networks,
 * not the internet. Three layers, so that no single one is trusted alone:
 *
 * - Docker's `Internal` option: no masquerading, and Docker's own isolation rules drop what
 *   would leave the bridge; ICC is off, so containers on it do not reach one another.
 * - `<chain>-FWD` (from DOCKER-USER, before Docker's rules) REJECTs everything forwarded from
 *   the bridge, so a refusal is immediate instead of a DROP's time-out.
 * - `<chain>-IN` (from INPUT: any of the host's own addresses, on any interface) ACCEPTs TCP
 *   to the gateway address on the proxy's port and REJECTs the rest. ACCEPT, not RETURN: the
 *   proxy stays reachable under a host firewall whose INPUT policy is DROP.
 *
 * The containers need no DNS: `host.docker.internal` is an extra host pointing at the gateway,
 * and the URLs in their environment carry the gateway's address.
 */

export const SERVICE_NETWORK = 'dockhand-services';
export const SERVICE_BRIDGE = 'dh-svc0';
export const SERVICE_CHAIN = 'DOCKHAND-SERVICES';
/** The name the Exec Agent's containers used for the proxy's host. */
export const PROXY_HOST_NAME = 'host.docker.internal';

/** What `service_access` may ask for. */
export type ServiceName = 'data' | 'ai';

export interface ServiceNetworkOptions {
  docker: Docker;
  /** The service proxy's port (SERVICE_PROXY_PORT), the one port containers may reach. */
  port: number;
  /** Docker network name. Default `dockhand-services`. */
  name?: string;
  /** Host interface of the bridge, at most 15 characters. Default `dh-svc0`. */
  bridge?: string;
  /** Prefix of our chains, `<chain>-FWD` and `<chain>-IN`. Default `DOCKHAND-SERVICES`. */
  chain?: string;
  /**
   * false writes the rules shut (nothing let through) on a network that stays: for a proxy
   * that could not take its port, which some other program then holds. Default true.
   */
  open?: boolean;
  /** Default: spawns the command. Tests inject a recorder. */
  run?: Runner;
}

/** What the exec runner passes to container create for a container with service access. */
export interface ServiceNetwork {
  /** HostConfig.NetworkMode. */
  network: string;
  bridge: string;
  /** The bridge's address on the host, where the proxy listens. */
  gatewayIp: string;
  /** The containers' addresses: the only clients the proxy serves, besides loopback. */
  subnet: string;
  /** `http://<gateway>:<port>`. */
  proxyUrl: string;
  /** HostConfig.ExtraHosts: `host.docker.internal:<gateway>`. */
  extraHosts: string[];
}

/**
 * The `-A` lines of both chains. `gateway` undefined (the network is being made, or IPv6,
 * where the proxy does not listen) means nothing is let through.
 */
export function serviceRules({
  chain,
  family,
  gateway,
  port,
}: {
  chain: string;
  family: Family;
  gateway: string | undefined;
  port: number;
}): string[] {
  const fwd = `${chain}-FWD`;
  const input = `${chain}-IN`;
  return [
    `-A ${fwd} ${REJECT[family]}`,
    // Replies to connections the host opened to a container (the runner's own calls).
    `-A ${input} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`,
    ...(gateway ? [`-A ${input} -d ${hostCidr(gateway)} -p tcp -m tcp --dport ${port} -j ACCEPT`] : []),
    `-A ${input} ${REJECT[family]}`,
  ];
}

/**
 * Creates the service network and its rules, or refreshes the rules of the one that exists
 * (a changed SERVICE_PROXY_PORT included); safe at every start-up and from several workers.
 */
export async function ensureServiceNetwork(options: ServiceNetworkOptions): Promise<ServiceNetwork> {
  const {
    docker,
    port,
    name = SERVICE_NETWORK,
    bridge = SERVICE_BRIDGE,
    chain = SERVICE_CHAIN,
    open = true,
    run,
  } = options;
  const { gateway, subnet } = await ensureGuardedBridge({
    docker,
    name,
    bridge,
    chain,
    run,
    internal: true,
    rules: (family, gw) =>
      serviceRules({ chain, family, gateway: open && family === 'ipv4' ? gw : undefined, port }),
  });
  if (!gateway || !subnet) {
    throw new Error(
      `Docker network ${name} has no IPv4 gateway and subnet, so the service proxy has no address to listen on; remove it (docker network rm ${name}) and start again.`,
    );
  }
  const proxyUrl = `http://${gateway}:${port}`;
  return {
    network: name,
    bridge,
    gatewayIp: gateway,
    subnet,
    proxyUrl,
    extraHosts: [`${PROXY_HOST_NAME}:${gateway}`],
  };
}

/** Removes the network (its containers must be gone), the jumps and both chains. Idempotent. */
export async function removeServiceNetwork(
  options: Pick<ServiceNetworkOptions, 'docker' | 'name' | 'bridge' | 'chain' | 'run'>,
): Promise<void> {
  const { docker, name = SERVICE_NETWORK, bridge = SERVICE_BRIDGE, chain = SERVICE_CHAIN, run } = options;
  await removeGuardedBridge({ docker, name, bridge, chain, run });
}

/**
 * The Exec Agent's variables for a container's `service_access`: SERVICE_PROXY_URL when any
 * service is asked for, DATA_SERVICE_URL and AI_SERVICE_URL for each one. Its clients append
 * `/query` (`AI_SERVICE_URL + '/query'`), so each names its service's prefix on the proxy.
 */
export function serviceEnv(proxyUrl: string, access: readonly ServiceName[]): Record<string, string> {
  if (access.length === 0) return {};
  const env: Record<string, string> = { SERVICE_PROXY_URL: proxyUrl };
  if (access.includes('data')) env.DATA_SERVICE_URL = `${proxyUrl}/data`;
  if (access.includes('ai')) env.AI_SERVICE_URL = `${proxyUrl}/ai`;
  return env;
}
