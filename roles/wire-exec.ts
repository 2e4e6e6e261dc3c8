import { hostname } from 'node:os';
import type Docker from 'dockerode';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../core/config.ts';
import { ConfigError } from '../core/errors.ts';
import { createMinioClient } from '../processors/exec/minio-transfer.ts';
import { createExecution } from '../processors/exec/run-execution.ts';
import { checkInputPaths } from '../processors/exec/workspace-input.ts';
import { checkOutputPaths } from '../processors/exec/workspace-output.ts';
import { createExecProcessor } from '../processors/exec.ts';
import type { Processor } from '../processors/index.ts';
import { closeRedis, createRedis, type RedisLifecycle } from '../queues/connection.ts';
import type { Enqueue } from '../queues/enqueue.ts';
import { createExecBridge } from '../queues/exec/bridge.ts';
import { execCancelChannel } from '../queues/exec/state.ts';
import { createExecWaiter, type ExecWaiter } from '../queues/exec/waiter.ts';
import type { LogWriter } from '../queues/log-stream.ts';
import type { QueueSet } from '../queues/queue-set.ts';
import type { ExecRequest } from '../queues/schemas/exec.ts';
import { CgroupProfiler } from '../runtimes/cgroup-profiler.ts';
import { placeInit } from '../runtimes/exec-init/install-init.ts';
import { ExecRunner } from '../runtimes/exec-runner.ts';
import { type WiredServiceProxy, wireServiceProxy } from './wire-service-proxy.ts';

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
  registry: Registry;
  /** Output of executions run here, for GET /exec/:id/logs. */
  liveLogs?: LogWriter;
}) {
  const { config, producer } = deps;
  const prefix = config.redis.prefix;
  const connections: Redis[] = [];
  const connect = () => {
    const redis = createRedis(config.redis.url, 'worker', {}, deps.lifecycle);
    connections.push(redis);
    return redis;
  };

  // What waits for Redis (the events stream, subscriptions): a role may start while Redis is
  // away, and is ready once these are in place.
  const redisSetup: Promise<unknown>[] = [];
  let waiter: ExecWaiter | undefined;
  if (deps.gateway || deps.bridge) {
    waiter = createExecWaiter(deps.queues.exec, connect(), producer, prefix);
    redisSetup.push(waiter.ready());
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
          channels: config.exec.channels,
          log: deps.logger,
          checkRequest: checkRequest(config),
        })
      : undefined;
  if (bridge) redisSetup.push(bridge.start());

  let runner: ExecRunner | undefined;
  let proxy: WiredServiceProxy | undefined;
  let processor: Processor<'exec'> | null = null;
  let active = () => 0;
  if (deps.worker) {
    const owner = `${hostname()}/${process.pid}`;
    // A missing copy is then reported by runner.start() below, like a missing build.
    const initPath = await placeInit(config.exec.initPath, (err) =>
      deps.logger.error(
        { err, initPath: config.exec.initPath },
        'dh-init could not be copied to EXEC_INIT_PATH.',
      ),
    );
    runner = new ExecRunner({
      docker: deps.docker,
      owner,
      config: config.exec,
      initPath,
      profiler: new CgroupProfiler(),
      logger: deps.logger,
    });
    try {
      await runner.start();
      proxy = await wireServiceProxy({
        config,
        docker: deps.docker,
        registry: deps.registry,
        logger: deps.logger,
      }).catch((err: unknown) => {
        deps.logger.error(
          { err },
          'The service proxy could not start (it needs root, iptables and a free SERVICE_PROXY_PORT): executions asking for service_access will fail.',
        );
        return undefined;
      });
      const liveLogs = deps.liveLogs;
      const exec = createExecProcessor({
        execute: createExecution({
          runner,
          limits: config.exec,
          services: proxy?.services,
          onOutput: liveLogs && ((id, chunk, stream) => liveLogs.append('exec', id, chunk, stream)),
          minio: createMinioClient(config.minio),
          onSkip: (id, path, reason) =>
            deps.logger.warn({ execution_id: id, path, reason }, 'Left out of the MinIO upload.'),
        }),
        redis: producer,
        prefix,
        onEnd: liveLogs && ((id, status) => liveLogs.end('exec', id, status)),
      });
      // A cancel for an execution this process runs: the flag covers the one not started yet.
      const cancels = connect();
      cancels.on('message', (_channel: string, id: string) => exec.cancel(id));
      redisSetup.push(cancels.subscribe(execCancelChannel(prefix)));
      processor = exec.processor;
      active = exec.active;
    } catch (err) {
      // A missing init helper says what to build; only an error we cannot name blames Docker.
      deps.logger.error(
        { err },
        err instanceof ConfigError
          ? `This worker runs no exec requests: ${err.message} Other queues run.`
          : 'Docker is not reachable: this worker runs no exec requests (start dockerd or set DOCKER_HOST); other queues run.',
      );
      await runner.close().catch(() => {});
      runner = undefined;
    }
  }

  return {
    waiter,
    bridge,
    processor,
    /** Settles once what waits for Redis is in place; rejects only when the role closes first. */
    redisReady: Promise.all(redisSetup).then(() => {}),
    /** Warm and busy containers (the node agent reports them). */
    stats: () => runner?.stats(),
    active: () => active(),
    async close() {
      await bridge?.close();
      await runner?.close();
      await proxy?.close();
      await waiter?.close();
      await Promise.all(connections.map(closeRedis));
    },
  };
}
