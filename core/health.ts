import type { Redis } from 'ioredis';

export type DependencyState = 'up' | 'down';
export interface HealthReport {
  ready: boolean;
  redis: DependencyState;
  docker: DependencyState;
}

export interface HealthDeps {
  redis: Redis;
  /** Anything that answers a ping: dockerode's client in production. */
  docker: { ping(): Promise<unknown> };
  /** True once shutdown began: load balancers should stop sending work before HTTP closes. */
  isShuttingDown(): boolean;
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
 * Ready means work can be accepted: Redis answers and we are not shutting down. Docker is
 * reported but does not gate readiness, because HTTP jobs and batches run without it; the
 * routes that need it answer 503 themselves.
 */
export function createHealth(deps: HealthDeps) {
  const timeoutMs = deps.timeoutMs ?? 1000;
  return async function check(): Promise<HealthReport> {
    const [redis, docker] = await Promise.all([
      probe(() => deps.redis.ping(), timeoutMs),
      probe(() => deps.docker.ping(), timeoutMs),
    ]);
    return { ready: redis === 'up' && !deps.isShuttingDown(), redis, docker };
  };
}
export type HealthCheck = ReturnType<typeof createHealth>;
