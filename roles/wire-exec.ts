import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../core/config.ts';
import { closeRedis, createRedis, type RedisLifecycle } from '../queues/connection.ts';
import type { Enqueue } from '../queues/enqueue.ts';
import { createExecBridge } from '../queues/exec/bridge.ts';
import { createExecWaiter, type ExecWaiter } from '../queues/exec/waiter.ts';
import type { QueueSet } from '../queues/queue-set.ts';

/**
 * Exec requests in one process: the waiter where requests enter (gateway, bridge), the
 * bridge where the role keeps it, the runner and processor where the `exec` queue is worked.
 */
export async function wireExec(deps: {
  config: Config;
  producer: Redis;
  queues: QueueSet;
  enqueue: Enqueue;
  logger: Logger;
  lifecycle: RedisLifecycle;
  gateway: boolean;
  bridge: boolean;
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
        })
      : undefined;
  await bridge?.start();

  return {
    waiter,
    bridge,
    processor: null,
    async close() {
      await bridge?.close();
      await waiter?.close();
      await Promise.all(connections.map(closeRedis));
    },
  };
}
