import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A loopback server for HTTP jobs that counts what reaches it, per key: the side effect a test
 * counts to tell "ran once" from "ran twice". `/hold/<key>` requests wait until `release(key)`
 * (after which that key is answered at once); `/ok/<key>` are answered at once. Every request
 * is counted when it arrives, answered or not.
 */
export async function startCountingTarget() {
  const counts = new Map<string, number>();
  const released = new Set<string>();
  const held = new Map<string, Set<ServerResponse>>();
  const arrivals = new Set<() => void>();
  const server = createServer((req, res) => {
    const [, mode, key = ''] = new URL(req.url ?? '/', 'http://x').pathname.split('/');
    counts.set(key, (counts.get(key) ?? 0) + 1);
    for (const wake of [...arrivals]) wake();
    if (mode === 'hold' && !released.has(key)) {
      const set = held.get(key) ?? new Set();
      set.add(res);
      held.set(key, set);
      res.on('close', () => set.delete(res));
      return;
    }
    res.end(key);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const count = (key: string) => counts.get(key) ?? 0;
  return {
    url: `http://127.0.0.1:${port}`,
    count,
    /** Requests for `key` being held right now (a worker killed mid-request drops its own). */
    holding: (key: string) => held.get(key)?.size ?? 0,
    /** Resolves once `key` has had `n` requests; rejects, naming them, after `timeoutMs`. */
    arrived(key: string, n = 1, timeoutMs = 60_000): Promise<void> {
      if (count(key) >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          arrivals.delete(wake);
          reject(
            new Error(
              `Timed out after ${timeoutMs} ms waiting for request ${n} to ${key} (got ${count(key)})`,
            ),
          );
        }, timeoutMs);
        const wake = () => {
          if (count(key) < n) return;
          arrivals.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        arrivals.add(wake);
      });
    },
    /** Answers the held requests for `key`, and every later one at once. */
    release(key: string): void {
      released.add(key);
      for (const res of held.get(key) ?? []) res.end(key);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
export type CountingTarget = Awaited<ReturnType<typeof startCountingTarget>>;
