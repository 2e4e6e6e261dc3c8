import { Redis, type RedisOptions } from 'ioredis';
import { redactUrl } from '../core/config.ts';
import { coerceError, DependencyUnavailableError } from '../core/errors.ts';

/**
 * Workers block on Redis and must ride out a restart, so their commands never give up
 * (BullMQ requires maxRetriesPerRequest: null). Producers serve HTTP requests, so they
 * fail fast: a command made while Redis is away errors at once and the caller answers 503.
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
  const redis = new Redis(url, { lazyConnect: true, ...options });
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
