import { Redis, type RedisOptions } from 'ioredis';
import { redactUrl } from '../core/config.ts';
import { coerceError, DependencyUnavailableError } from '../core/errors.ts';

/**
 * Workers block on Redis and must ride out a restart, so their commands never give up
 * (BullMQ requires maxRetriesPerRequest: null). Producers serve HTTP requests, so they
 * fail fast: a command made while Redis is away errors at once and the caller answers 503.
 *
 * Worker connections connect as soon as they are made: BullMQ connects a client it finds
 * unconnected itself, once, and a first attempt that fails (Redis not up yet) leaves that
 * Worker or QueueEvents broken for good; one already connecting is waited for instead.
 */
export type ConnectionRole = 'worker' | 'producer';

/**
 * Reconnect with backoff until `lifecycle.closing` is set; then give up. Duplicates BullMQ
 * makes of a client share its options, so they give up too, and a shutdown while Redis is
 * away ends instead of retrying forever.
 */
export interface RedisLifecycle {
  closing: boolean;
}

export function createRedis(
  url: string,
  role: ConnectionRole,
  extra: RedisOptions = {},
  lifecycle: RedisLifecycle = { closing: false },
): Redis {
  const retryStrategy = (times: number) => (lifecycle.closing ? null : Math.min(times * 100, 2000));
  const options: RedisOptions =
    role === 'worker'
      ? { maxRetriesPerRequest: null, enableReadyCheck: true, retryStrategy, ...extra }
      : { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000, retryStrategy, ...extra };
  const redis = new Redis(url, { lazyConnect: role === 'producer', ...options });
  // ioredis reconnects by itself; without a listener each failed attempt is an unhandled 'error'.
  redis.on('error', () => {});
  return redis;
}

/** Connects and waits until the server answers, or throws one clear sentence. */
export async function connectRedis(redis: Redis, url: string): Promise<Redis> {
  try {
    if (redis.status === 'wait') await redis.connect();
    await redis.ping();
    return redis;
  } catch (err) {
    redis.disconnect();
    throw new DependencyUnavailableError(
      `Redis at ${redactUrl(url)} does not answer (${coerceError(err).message}); start one or set REDIS_URL.`,
      err,
    );
  }
}

/**
 * Starts connecting a producer and keeps trying in the background; answers whether the first
 * attempt reached Redis. A role starts with Redis away this way: its routes answer 503 and
 * /ready says not ready until the connection is made. BullMQ queues made on the connection
 * meanwhile wait for it (they would give up for good on one never asked to connect).
 */
export async function startConnecting(redis: Redis): Promise<boolean> {
  try {
    if (redis.status === 'wait') await redis.connect();
    await redis.ping();
    return true;
  } catch {
    // ioredis goes on reconnecting (retryStrategy) until the role closes.
    return false;
  }
}

/**
 * Runs `task` until it succeeds: again each time the connection becomes ready after a failure
 * while Redis was away. Rejects with the error of a failure while Redis answered, or once the
 * role is closing.
 */
export async function untilDone<T>(
  redis: Redis,
  lifecycle: RedisLifecycle,
  task: () => Promise<T>,
): Promise<T> {
  for (;;) {
    try {
      return await task();
    } catch (err) {
      // Failed with Redis there: not an outage, so trying again would fail the same way.
      if (lifecycle.closing || redis.status === 'ready') throw err;
      await backOrEnd(redis);
      if (lifecycle.closing || redis.status === 'end') throw err;
    }
  }
}

function backOrEnd(redis: Redis): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      redis.off('ready', done);
      redis.off('end', done);
      resolve();
    };
    redis.on('ready', done);
    redis.on('end', done);
  });
}

/**
 * QUIT when Redis is there (pending replies arrive first), otherwise disconnect: a QUIT sent
 * while reconnecting is refused and ioredis would go on reconnecting, keeping the process alive.
 */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  if (redis.status === 'ready') {
    try {
      await redis.quit();
      return;
    } catch {
      // fall through to disconnect
    }
  }
  redis.disconnect();
}
