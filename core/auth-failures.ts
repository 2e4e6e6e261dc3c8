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

// INCR and the window's expiry in one step (a fixed window that starts at the first failure);
// answers the count and the window's remaining time.
const RECORD = `
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}`;

/**
 * Counts wrong keys per client address in Redis, with a fixed window shared by every gateway.
 * Past `perWindow` failures the address is refused (any key, even a right one) until the
 * window ends, so a guesser gets `perWindow` tries a window whatever it presents. Only a wrong
 * key costs a Redis call: a gateway learns that an address is blocked from the count its own
 * failed check brings back, and remembers it until the window ends, so a right key is checked
 * without Redis. (A guesser spreading over G gateways therefore gets at most G more tries
 * before each one has seen the block.) Redis being away lets requests through to the key
 * check, as the request rate limit does: the key check is the guard, this only slows guessing.
 */
export function createAuthFailures(options: AuthFailuresOptions) {
  const windowMs = options.windowMs ?? 60_000;
  const keyOf = (bucket: string) => `${options.prefix}:auth-failures:${bucket}`;
  const blockedUntil = new Map<string, number>();
  return {
    /** Milliseconds until the address may try again; 0 when it may now. No Redis call. */
    blockedFor(address: string): number {
      if (options.perWindow === 0) return 0;
      const bucket = clientBucket(address);
      const until = blockedUntil.get(bucket);
      if (until === undefined) return 0;
      const left = until - Date.now();
      if (left > 0) return left;
      blockedUntil.delete(bucket);
      return 0;
    },
    /** One more wrong key from this address; past the limit, it is blocked here until the window ends. */
    async record(address: string): Promise<void> {
      if (options.perWindow === 0) return;
      const bucket = clientBucket(address);
      try {
        const [count, ttl] = (await options.redis.eval(RECORD, 1, keyOf(bucket), windowMs)) as [
          number,
          number,
        ];
        if (count >= options.perWindow) {
          blockedUntil.set(bucket, Date.now() + (ttl > 0 ? ttl : windowMs));
          // Blocks of addresses that never came back expire here, so the map stays small.
          if (blockedUntil.size > 10_000)
            for (const [b, until] of blockedUntil) if (until <= Date.now()) blockedUntil.delete(b);
        }
      } catch {
        // Redis is away: the failure goes uncounted; the key check still refused it.
      }
    },
  };
}
export type AuthFailures = ReturnType<typeof createAuthFailures>;
