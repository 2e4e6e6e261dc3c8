import { hostname } from 'node:os';
import type Docker from 'dockerode';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../core/config.ts';
import { createMinioClient } from '../processors/exec/minio-transfer.ts';
import { createExecution, type ExecServices } from '../processors/exec/run-execution.ts';
import { checkInputPaths } from '../processors/exec/workspace-input.ts';
import { checkOutputPaths } from '../processors/exec/workspace-output.ts';
import { createExecProcessor } from '../processors/exec.ts';
import type { Processor } from '../processors/index.ts';
import { closeRedis, createRedis, type RedisLifecycle } from '../queues/connection.ts';
import type { Enqueue } from '../queues/enqueue.ts';
import { createExecBridge } from '../queues/exec/bridge.ts';
import { execCancelChannel } from '../queues/exec/state.ts';
import { createExecWaiter, type ExecWaiter } from '../queues/exec/waiter.ts';
import type { QueueSet } from '../queues/queue-set.ts';
import type { ExecRequest } from '../queues/schemas/exec.ts';
import { CgroupProfiler } from '../runtimes/cgroup-profiler.ts';
import { DEFAULT_INIT_PATH, ExecRunner } from '../runtimes/exec-runner.ts';

/** What the gateway and the bridge refuse before queueing: paths that leave the workspace, sizes. */
export function checkRequest(config: Config) {
  return (request: ExecRequest) => {
    checkInputPaths(request.input, config.exec);
    checkOutputPaths(request.output);
  };
}

/**
 * Exec requests in one process: the waiter where requests enter (gateway, bridge), the
 * bridge where the role keeps it, the runner and processor where the `exec` queue is worked.
 */
export async function wireExec(deps: {
  config: Config;
  docker: Docker;
  producer: Redis;
  queues: QueueSet;
  enqueue: Enqueue;
  logger: Logger;
  lifecycle: RedisLifecycle;
  gateway: boolean;
  bridge: boolean;
  worker: boolean;
  /** The service proxy's network and env, where this process runs one. */
  services?: ExecServices;
}) {
  const { config, producer } = deps;
  const prefix = config.redis.prefix;
  const connections: Redis[] = [];
  const connect = () => {
    const redis = createRedis(config.redis.url, 'worker', {}, deps.lifecycle);
    connections.push(redis);
    return redis;
  };

  let waiter: ExecWaiter | undefined;
  if (deps.gateway || deps.bridge) {
    waiter = createExecWaiter(deps.queues.exec, connect(), producer, prefix);
    await waiter.ready();
  }
  const bridge =
    deps.bridge && waiter
      ? createExecBridge({
          subscriber: connect(),
          redis: producer,
          queue: deps.queues.exec,
          enqueue: deps.enqueue,
          waiter,
          limits: config.exec,
          prefix,
          log: deps.logger,
          checkRequest: checkRequest(config),
        })
      : undefined;
  await bridge?.start();

  let runner: ExecRunner | undefined;
  let processor: Processor<'exec'> | null = null;
  let active = () => 0;
  if (deps.worker) {
    const owner = `${hostname()}/${process.pid}`;
    runner = new ExecRunner({
      docker: deps.docker,
      owner,
      config: config.exec,
      initPath: DEFAULT_INIT_PATH,
      profiler: new CgroupProfiler(),
      logger: deps.logger,
    });
    try {
      await runner.start();
      const exec = createExecProcessor({
        execute: createExecution({
          runner,
          limits: config.exec,
          services: deps.services,
          minio: createMinioClient(config.minio),
          onSkip: (id, path, reason) =>
            deps.logger.warn({ execution_id: id, path, reason }, 'Left out of the MinIO upload.'),
        }),
        redis: producer,
        prefix,
      });
      // A cancel for an execution this process runs: the flag covers the one not started yet.
      const cancels = connect();
      cancels.on('message', (_channel: string, id: string) => exec.cancel(id));
      await cancels.subscribe(execCancelChannel(prefix));
      processor = exec.processor;
      active = exec.active;
    } catch (err) {
      deps.logger.error(
        { err },
        'Docker is not reachable: this worker runs no exec requests (start dockerd or set DOCKER_HOST); other queues run.',
      );
      await runner.close().catch(() => {});
      runner = undefined;
    }
  }

  return {
    waiter,
    bridge,
    processor,
    /** Warm and busy containers (the node agent reports them). */
    stats: () => runner?.stats(),
    active: () => active(),
    async close() {
      await bridge?.close();
      await runner?.close();
      await waiter?.close();
      await Promise.all(connections.map(closeRedis));
    },
  };
}
