import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { type QueueName, queueCatalog, queueNames } from './registry.ts';

export type QueueSet = { readonly [K in QueueName]: Queue } & { close(): Promise<void> };

/** One producer-side Queue per catalog entry, sharing one fail-fast connection and one prefix. */
export function createQueueSet(connection: Redis, prefix: string): QueueSet {
  const queues = Object.fromEntries(
    queueNames.map((name) => {
      const queue = new Queue(name, { connection, prefix, defaultJobOptions: queueCatalog[name].jobOptions });
      // Connection errors surface as 503s on the calls that need Redis; unheard, BullMQ prints each one.
      queue.on('error', () => {});
      return [name, queue];
    }),
  ) as Record<QueueName, Queue>;
  let closing: Promise<void> | undefined;
  return {
    ...queues,
    close() {
      closing ??= Promise.all(Object.values(queues).map((q) => q.close())).then(() => undefined);
      return closing;
    },
  };
}
