import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Test } from 'tap';
import { type Config, loadConfig } from '../../core/config.ts';
import { type QueueRole, type RoleOptions, startRole } from '../../roles/index.ts';
import { REDIS_URL } from './redis-server.ts';
import { tempDir } from './temp-dir.ts';

export { REDIS_URL };

/** A queue prefix no other test uses. */
export const testPrefix = () => `t${randomBytes(5).toString('hex')}`;

/**
 * A config on the test Redis with a prefix and a data directory of its own, so tests never
 * see each other's jobs. What it made goes when `t` ends: the directory, and the prefix's keys
 * (on the shared Redis; a private server's keys go with the server). A QUEUE_PREFIX or
 * DATA_DIR passed in belongs to the caller.
 */
export function testEnv(t: Test, overrides: Record<string, string> = {}): Record<string, string> {
  const queuePrefix = overrides.QUEUE_PREFIX ?? testPrefix();
  const env: Record<string, string> = {
    REDIS_URL,
    QUEUE_PREFIX: queuePrefix,
    PORT: '3000',
    // A worker that listens takes any free port, never another test's (or a helper's) 8001.
    WORKER_METRICS_PORT: '0',
    LOG_LEVEL: 'silent',
    // No warm containers unless a test is about functions: the pool costs ~0.3 s to fill.
    POOL_MIN_IDLE: '0',
    // Pub/sub channels are not under the prefix: each test's bridge gets channels of its own.
    EXEC_REQUESTS_CHANNEL: `${queuePrefix}:exec-requests`,
    EXEC_RESPONSES_CHANNEL: `${queuePrefix}:exec-responses`,
    // Runtime images built under other tags (a second checkout changing a bootstrap builds its
    // own with `RUNTIME_IMAGE_NODE20=... scripts/build-runtime-images.sh`, leaving :local alone).
    ...pickEnv('RUNTIME_IMAGE_NODE20', 'RUNTIME_IMAGE_PYTHON3', 'RUNTIME_IMAGE_PROVIDED'),
    ...overrides,
  };
  env.DATA_DIR = overrides.DATA_DIR ?? tempDir(t, 'data');
  const prefix = env.QUEUE_PREFIX as string;
  if (!overrides.QUEUE_PREFIX && env.REDIS_URL === REDIS_URL) t.teardown(() => wipePrefix(prefix));
  return env;
}

function pickEnv(...names: string[]): Record<string, string> {
  return Object.fromEntries(names.flatMap((n) => (process.env[n] ? [[n, process.env[n] as string]] : [])));
}

export function testConfig(t: Test, overrides: Record<string, string> = {}): Config {
  return loadConfig(testEnv(t, overrides));
}

/** Deletes every key under a prefix of the test Redis. */
export async function wipePrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** Starts a role for one test and closes it when the test ends (before the config's own teardown). */
export async function startTestRole(t: Test, role: QueueRole, config: Config, options: RoleOptions = {}) {
  const running = await startRole(role, config, { listen: false, ...options });
  t.teardown(() => running.close());
  return running;
}
