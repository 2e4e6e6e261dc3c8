import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { Test } from 'tap';
import { type Config, loadConfig } from '../../core/config.ts';
import { type Role, type RoleOptions, startRole } from '../../roles/index.ts';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A config on the test Redis with a prefix of its own, so tests never see each other's jobs. */
export function testEnv(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    REDIS_URL,
    QUEUE_PREFIX: `t${randomBytes(5).toString('hex')}`,
    PORT: '3000',
    LOG_LEVEL: 'silent',
    // No warm containers unless a test is about functions: the pool costs ~0.3 s to fill.
    POOL_MIN_IDLE: '0',
    DATA_DIR: mkdtempSync(path.join(tmpdir(), 'dockhand-test-')),
    // Runtime images built under other tags (a second checkout changing a bootstrap builds its
    // own with `RUNTIME_IMAGE_NODE20=... scripts/build-runtime-images.sh`, leaving :local alone).
    ...pickEnv('RUNTIME_IMAGE_NODE20', 'RUNTIME_IMAGE_PYTHON3'),
    ...overrides,
  };
}

function pickEnv(...names: string[]): Record<string, string> {
  return Object.fromEntries(names.flatMap((n) => (process.env[n] ? [[n, process.env[n] as string]] : [])));
}

export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig(testEnv(overrides));
}

/** Deletes every key under a prefix: what a test leaves in Redis goes with it. */
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

/** Starts a role for one test and tears it down (and its keys) when the test ends. */
export async function startTestRole(t: Test, role: Role, config: Config, options: RoleOptions = {}) {
  const running = await startRole(role, config, { listen: false, ...options });
  t.teardown(async () => {
    await running.close();
    await wipePrefix(config.redis.prefix);
    if (config.storage.dataDir.startsWith(tmpdir()))
      await rm(config.storage.dataDir, { recursive: true, force: true });
  });
  return running;
}
