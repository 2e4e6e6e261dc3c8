import type { Redis } from 'ioredis';

type Callback = (error: Error | null, result?: { current: number; ttl: number }) => void;

interface Counter {
  window: number;
  /** Our hits not yet added to Redis. */
  pending: number;
  /** The window's total in Redis, ours and other gateways', as of the last flush. */
  shared: number;
}

/**
 * A rate-limit store for @fastify/rate-limit that keeps the request path off Redis. Counts are
 * per fixed window (aligned to the clock, so every gateway agrees which window it is); each
 * request is counted in memory at once, and every `flushMs` the increments go to Redis in one
 * pipeline, whose answers bring back what other gateways counted. One gateway sees exact
 * counts; several see each other's with at most `flushMs` of delay, a small overshoot traded
 * for a Redis round trip on every request. Redis away: counting goes on locally and the
 * pending increments are sent when it is back.
 */
export function sharedWindowStore(options: { redis: Redis; prefix: string; flushMs?: number }) {
  const flushMs = options.flushMs ?? 100;
  const counters = new Map<string, Counter>();
  let windowMs = 60_000;
  let flushing = false;
  let flushes = 0;

  const counter = (key: string, now: number): Counter => {
    const window = Math.floor(now / windowMs);
    let c = counters.get(key);
    if (!c || c.window !== window) {
      c = { window, pending: 0, shared: 0 };
      counters.set(key, c);
    }
    return c;
  };
  const ttl = (now: number) => windowMs - (now % windowMs);

  /** `everyKey`: send every live key, not only those with hits (default: every tenth flush). */
  async function flush(everyKey = flushes % 10 === 0): Promise<void> {
    if (flushing) return;
    const now = Date.now();
    // Keys with hits go every flush; every tenth flush all live keys go, so a gateway also
    // hears of what other gateways counted for clients it has seen but not lately.
    flushes++;
    const batch: Array<[string, Counter, number]> = [];
    for (const [key, c] of counters) {
      if (c.window < Math.floor(now / windowMs)) counters.delete(key);
      else if (c.pending > 0 || everyKey) batch.push([key, c, c.pending]);
    }
    if (batch.length === 0) return;
    flushing = true;
    try {
      const pipeline = options.redis.pipeline();
      for (const [key, c, n] of batch) {
        const redisKey = `${options.prefix}${key}:${c.window}`;
        pipeline.incrby(redisKey, n).pexpire(redisKey, windowMs * 2);
      }
      const replies = (await pipeline.exec()) ?? [];
      batch.forEach(([, c, n], i) => {
        const [error, total] = replies[i * 2] ?? [];
        if (error || typeof total !== 'number') return;
        c.pending -= n;
        c.shared = total;
      });
    } catch {
      // Redis is away: the increments stay pending and go with the next flush.
    } finally {
      flushing = false;
    }
  }
  const timer = setInterval(() => void flush(), flushMs).unref();

  /** The class @fastify/rate-limit instantiates with its global parameters. */
  class Store {
    constructor(params: { timeWindow?: number }) {
      if (typeof params.timeWindow === 'number') windowMs = params.timeWindow;
    }
    incr(key: string, cb: Callback): void {
      const now = Date.now();
      const c = counter(key, now);
      c.pending++;
      cb(null, { current: c.shared + c.pending, ttl: ttl(now) });
    }
    read(key: string, cb: Callback): void {
      const now = Date.now();
      const c = counters.get(key);
      const live = c !== undefined && c.window === Math.floor(now / windowMs);
      cb(null, live ? { current: c.shared + c.pending, ttl: ttl(now) } : { current: 0, ttl: 0 });
    }
    child(): Store {
      return this;
    }
  }
  return {
    Store,
    flush,
    /** Sends what is pending and stops the timer. */
    async close(): Promise<void> {
      clearInterval(timer);
      await flush();
    },
  };
}
