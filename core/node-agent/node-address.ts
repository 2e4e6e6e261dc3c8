import { readFile } from 'node:fs/promises';
import os from 'node:os';
import si from 'systeminformation';

// Interfaces that carry containers' or VMs' traffic, never the node's own address.
const VIRTUAL = /^(docker\d*|br-|veth|virbr|cni|flannel|cali|vxlan|tun|tap|lo)/;

/**
 * The node's primary IPv4: the default route's interface when it has one, else the first
 * non-internal IPv4 that is not a bridge for containers (docker0 would name 172.17.0.1 on every
 * node), else any non-internal one, else 127.0.0.1.
 */
export function pickPrimaryIpv4(
  interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]>,
  defaultInterface?: string,
): string {
  const v4 = (name: string) =>
    (interfaces[name] ?? []).find((a) => a.family === 'IPv4' && !a.internal)?.address;
  if (defaultInterface) {
    const address = v4(defaultInterface);
    if (address) return address;
  }
  const names = Object.keys(interfaces);
  const real = names.filter((n) => !VIRTUAL.test(n));
  for (const name of [...real, ...names]) {
    const address = v4(name);
    if (address) return address;
  }
  return '127.0.0.1';
}

/** The interface of the default route in /proc/net/route (destination 0.0.0.0), if any. */
export function defaultRouteInterface(procNetRoute: string): string | undefined {
  for (const line of procNetRoute.split('\n').slice(1)) {
    const [iface, destination, , , , , , mask] = line.trim().split(/\s+/);
    if (iface && destination === '00000000' && (mask ?? '00000000') === '00000000') return iface;
  }
  return undefined;
}

async function defaultInterface(): Promise<string | undefined> {
  // systeminformation asks `ip route` synchronously on Linux; the kernel's table is a file read.
  if (process.platform === 'linux')
    return readFile('/proc/net/route', 'utf8').then(defaultRouteInterface, () => undefined);
  return si.networkInterfaceDefault().then(
    (name) => name || undefined,
    () => undefined,
  );
}

/** Name and IP the node registers with: NODE_NAME / NODE_IP when set, else found here. */
export async function nodeAddress(overrides: {
  name?: string;
  ip?: string;
}): Promise<{ name: string; ip: string }> {
  const name = overrides.name ?? os.hostname();
  if (overrides.ip) return { name, ip: overrides.ip };
  return { name, ip: pickPrimaryIpv4(os.networkInterfaces(), await defaultInterface()) };
}
