import type { Redis } from 'ioredis';
import ipaddr from 'ipaddr.js';

/**
 * The bucket a client address counts in. IPv6 hosts are usually given a whole /64, so one
 * machine could rotate through addresses: its /64 is one client. IPv4-mapped IPv6 (a dual-stack
 * listener) is the IPv4 address.
 */
export function clientBucket(address: string): string {
  if (!ipaddr.isValid(address)) return address;
  const ip = ipaddr.process(address);
  if (ip.kind() === 'ipv4') return ip.toString();
  return `${(ip as ipaddr.IPv6).parts
    .slice(0, 4)
    .map((p) => p.toString(16))
    .join(':')}::/64`;
}

export interface AuthFailuresOptions {
  /** Shared counters, so every gateway sees the same failures. */
  redis: Redis;
  prefix: string;
  /** Failures an address may have in a window before it is refused; 0 = never refused. */
  perWindow: number;
  /** Default one minute. */
  windowMs?: number;
}

// INCR and the window's expiry in one step: a fixed window that starts at the first failure.
const RECORD = `
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`;

/**
 * Counts wrong keys per client address in Redis, with a fixed window. Past `perWindow`
 * failures the address is refused (any key, even a right one) until the window ends, so a
 * guesser gets `perWindow` tries a window whatever it presents. Redis being away lets requests
 * through to the key check, as the request rate limit does: the key check is the guard, this
 * only slows guessing.
 */
export function createAuthFailures(options: AuthFailuresOptions) {
  const windowMs = options.windowMs ?? 60_000;
  const keyOf = (address: string) => `${options.prefix}:auth-failures:${clientBucket(address)}`;
  return {
    /** Milliseconds until the address may try again; 0 when it may now. */
    async blockedFor(address: string): Promise<number> {
      if (options.perWindow === 0) return 0;
      try {
        // One GET per request; the window's remaining time is asked only of a blocked address.
        const key = keyOf(address);
        if (Number(await options.redis.get(key)) < options.perWindow) return 0;
        const ttl = await options.redis.pttl(key);
        if (ttl === -2) return 0; // the window ended between the two commands
        return ttl > 0 ? ttl : windowMs;
      } catch {
        return 0;
      }
    },
    /** One more wrong key from this address. */
    async record(address: string): Promise<void> {
      if (options.perWindow === 0) return;
      await options.redis.eval(RECORD, 1, keyOf(address), windowMs).catch(() => {});
    },
  };
}
export type AuthFailures = ReturnType<typeof createAuthFailures>;
