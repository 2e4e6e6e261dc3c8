import type { Redis } from 'ioredis';
import { assessRedisDurability, type RedisDurability } from '../core/redis-durability.ts';

/**
 * Checks the server's durability settings whenever the connection becomes ready (at start, or
 * later when Redis was away at start, and after every reconnect: a restarted Redis may have
 * been given other settings). `onWarnings` hears the warnings when they differ from the last
 * ones heard, so a Redis without AOF is one line per start, not one per reconnect.
 */
export function watchRedisDurability(redis: Redis, onWarnings: (warnings: string[]) => void) {
  let current: RedisDurability | undefined;
  let heard = '[]';
  const check = async () => {
    try {
      current = assessRedisDurability(await redis.info());
    } catch {
      // Gone again before it answered: the next 'ready' checks again.
      return;
    }
    const key = JSON.stringify(current.warnings);
    if (key === heard) return;
    heard = key;
    if (current.warnings.length > 0) onWarnings(current.warnings);
  };
  const onReady = () => void check();
  redis.on('ready', onReady);
  const first = redis.status === 'ready' ? check() : Promise.resolve();
  return {
    /** Settles when the check of a connection ready at the call has been made. */
    checked: first,
    current: () => current,
    stop: () => void redis.off('ready', onReady),
  };
}
