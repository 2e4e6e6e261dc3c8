import { hostname } from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import {
  createFunctionStore,
  localCodeStorage,
  s3CodeStorage,
} from '../processors/functions/function-store.ts';
import { createFunctionMetrics } from '../processors/functions/metrics.ts';
import { createTuningHistory } from '../processors/functions/tuning-history.ts';
import { createFunctionsProcessor, type InvocationResult } from '../processors/functions.ts';
import { closeRedis, createRedis, type RedisLifecycle } from '../queues/connection.ts';
import { createResultWaiter, type ResultWaiter } from '../queues/result-waiter.ts';
import { runtimeCatalog } from '../runtimes/catalog.ts';
import { CgroupProfiler } from '../runtimes/cgroup-profiler.ts';
import { DockerSandboxDriver } from '../runtimes/docker-sandbox.ts';
import { createInvoker } from '../runtimes/invoker.ts';
import { WarmPool } from '../runtimes/warm-pool.ts';
import type { Config } from './config.ts';
import { createDocker } from './docker.ts';
import { createS3 } from './s3.ts';

export const FUNCTION_RESULTS_CHANNEL = 'function-results';

/**
 * Everything functions need, made once per process: the store and tuning history everywhere,
 * the result waiter where the gateway runs, the warm pool and processor where workers run.
 * A worker whose Docker engine is away serves no functions (their jobs wait) and says why.
 */
export async function createFunctionServices(deps: {
  config: Config;
  producer: Redis;
  registry: Registry;
  logger: Logger;
  lifecycle: RedisLifecycle;
  gateway: boolean;
  worker: boolean;
}) {
  const { config, producer } = deps;
  const prefix = config.redis.prefix;
  const s3 = createS3(config.s3);
  const code =
    s3 && config.s3.codeBucket
      ? s3CodeStorage(s3, config.s3.codeBucket)
      : localCodeStorage(path.join(config.storage.dataDir, 'functions'));
  const store = createFunctionStore({ redis: producer, prefix, code });
  const history = createTuningHistory({ redis: producer, prefix });

  let waiterRedis: Redis | undefined;
  let waiter: ResultWaiter | undefined;
  if (deps.gateway) {
    waiterRedis = createRedis(config.redis.url, 'worker', {}, deps.lifecycle);
    waiter = createResultWaiter('functions', waiterRedis, prefix);
    await waiter.ready();
  }

  let pool: WarmPool | undefined;
  let processor: ReturnType<typeof createFunctionsProcessor> | null = null;
  if (deps.worker) {
    const metrics = createFunctionMetrics(deps.registry);
    pool = new WarmPool({
      driver: new DockerSandboxDriver(createDocker(config.docker.host), `${hostname()}/${process.pid}`),
      runtimes: runtimeCatalog(config.functions.images),
      minIdle: config.docker.poolMinIdle,
      max: config.functions.poolMax,
      idleTtlMs: config.functions.idleTtlSeconds * 1000,
      onEvent: metrics.onPoolEvent,
    });
    try {
      await pool.start();
      metrics.registerPool(pool);
      const publish = async (result: InvocationResult) => {
        await producer.publish(FUNCTION_RESULTS_CHANNEL, JSON.stringify(result));
      };
      processor = createFunctionsProcessor({
        store,
        history,
        invoke: createInvoker({ pool, profiler: new CgroupProfiler() }),
        sinks: [publish],
        onResult: metrics.onResult,
      });
    } catch (err) {
      deps.logger.error(
        { err },
        'Docker is not reachable: this worker serves no functions (start dockerd or set DOCKER_HOST); other queues run.',
      );
      await pool.close().catch(() => {});
      pool = undefined;
    }
  }

  return {
    store,
    history,
    waiter,
    s3,
    pool,
    processor,
    async close() {
      await waiter?.close();
      if (waiterRedis) await closeRedis(waiterRedis);
      await pool?.close();
    },
  };
}
