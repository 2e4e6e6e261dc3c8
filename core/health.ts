import type { Redis } from 'ioredis';
import type { RedisDurability } from './redis-durability.ts';

export type DependencyState = 'up' | 'down';
export interface HealthReport {
  ready: boolean;
  redis: DependencyState;
  docker: DependencyState;
  /** What the last check of the Redis server found (AOF, eviction); undefined until Redis answered once. */
  durability?: RedisDurability;
}

export interface HealthDeps {
  redis: Redis;
  /** Anything that answers a ping: dockerode's client in production. */
  docker: { ping(): Promise<unknown> };
  /** True once shutdown began: load balancers should stop sending work before HTTP closes. */
  isShuttingDown(): boolean;
  /** False while start-up work that waits for Redis (subscriptions, the tick) is still under way. */
  isStarted?(): boolean;
  /** The server's durability settings as last checked (reported, never gating readiness). */
  durability?(): RedisDurability | undefined;
  timeoutMs?: number;
}

async function probe(check: () => Promise<unknown>, timeoutMs: number): Promise<DependencyState> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timeout')), timeoutMs);
  });
  try {
    await Promise.race([check(), timeout]);
    return 'up';
  } catch {
    return 'down';
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Ready means work can be accepted: Redis answers, what start-up waited on Redis for is in
 * place, and we are not shutting down. Docker is reported but does not gate readiness, because
 * HTTP jobs and batches run without it; the routes that need it answer 503 themselves. Redis
 * durability is reported too: a Redis without AOF still takes work, it just may lose it.
 */
export function createHealth(deps: HealthDeps) {
  const timeoutMs = deps.timeoutMs ?? 1000;
  return async function check(): Promise<HealthReport> {
    const [redis, docker] = await Promise.all([
      probe(() => deps.redis.ping(), timeoutMs),
      probe(() => deps.docker.ping(), timeoutMs),
    ]);
    const started = deps.isStarted?.() ?? true;
    const ready = redis === 'up' && started && !deps.isShuttingDown();
    return { ready, redis, docker, durability: deps.durability?.() };
  };
}
export type HealthCheck = ReturnType<typeof createHealth>;
