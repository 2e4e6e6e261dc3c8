import type { Redis } from 'ioredis';

/**
 * Which workers can run a queue's jobs right now. A worker that can (for functions: its warm
 * pool is up and Docker answers) renews its entry every `beatMs`; an entry not renewed within
 * three beats has expired. Gateways read it before a synchronous call, so with no capable
 * worker the caller gets a 503 at once instead of waiting out a timeout.
 */
export function workerPresenceKey(prefix: string, queue: string) {
  // Outside `<prefix>:<queue>:*`, where BullMQ keeps job ids: no job can be named like it.
  return `${prefix}:presence:${queue}`;
}

export function createPresenceBeacon(deps: {
  redis: Redis;
  prefix: string;
  queue: string;
  workerId: string;
  /** Resolves when this worker can run the queue's jobs (e.g. Docker answers a ping). */
  canWork: () => Promise<unknown>;
  beatMs?: number;
  onError?: (error: unknown) => void;
}) {
  const beatMs = deps.beatMs ?? 5000;
  const key = workerPresenceKey(deps.prefix, deps.queue);
  let stopped = false;
  const beat = async () => {
    try {
      await deps.canWork();
    } catch (err) {
      deps.onError?.(err);
      await deps.redis.zrem(key, deps.workerId).catch(() => {
        // Redis is away too: the entry expires on its own within three beats.
      });
      return;
    }
    if (stopped) return;
    // Entries of workers that died without a word expire here, so the set does not grow.
    await deps.redis
      .multi()
      .zremrangebyscore(key, '-inf', Date.now())
      .zadd(key, Date.now() + 3 * beatMs, deps.workerId)
      .exec()
      .catch(() => {
        // Redis is away: the beat when it is back (below) adds the entry again.
      });
  };
  // Back from an outage (or a restart that lost the set): present again at once, not a beat later.
  const onReady = () => void beat();
  let timer: NodeJS.Timeout | undefined;
  return {
    async start(): Promise<void> {
      deps.redis.on('ready', onReady);
      await beat();
      timer = setInterval(() => void beat(), beatMs).unref();
    },
    async stop(): Promise<void> {
      stopped = true;
      clearInterval(timer);
      deps.redis.off('ready', onReady);
      // Redis is away: the entry expires on its own within three beats.
      await deps.redis.zrem(key, deps.workerId).catch(() => {});
    },
  };
}

/** Gateway side: is any worker able to run the queue's jobs? Asked at most once per `cacheMs`. */
export function createPresenceCheck(deps: { redis: Redis; prefix: string; queue: string; cacheMs?: number }) {
  const key = workerPresenceKey(deps.prefix, deps.queue);
  const cacheMs = deps.cacheMs ?? 1000;
  let cached: { at: number; value: Promise<boolean> } | undefined;
  return (): Promise<boolean> => {
    const now = Date.now();
    if (cached && now - cached.at < cacheMs) return cached.value;
    const value = deps.redis.zcount(key, now, '+inf').then((n) => n > 0);
    cached = { at: now, value };
    // A failed read is not cached: the next call asks again.
    value.catch(() => {
      cached = undefined;
    });
    return value;
  };
}
