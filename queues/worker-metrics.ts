import type { Redis } from 'ioredis';
import { Gauge, type Registry } from 'prom-client';
import { type QueueName, queueNames } from './registry.ts';
import { workerPresenceKey } from './worker-presence.ts';

/** Client names in a `CLIENT LIST` reply (Redis refuses spaces in a name, so a field ends at one). */
export function clientNames(list: string): string[] {
  const names: string[] = [];
  for (const line of list.split('\n')) {
    const match = / name=(\S*)/.exec(` ${line}`);
    if (match?.[1]) names.push(match[1]);
  }
  return names;
}

/** The name BullMQ gives a queue's connections (its protected QueueBase.clientName()). */
const bullClientName = (prefix: string, queue: string) =>
  `${prefix}:${Buffer.from(queue).toString('base64')}`;

/**
 * Workers per queue, read when Prometheus scrapes. `dockhand_queue_workers` counts BullMQ
 * workers connected to Redis: each names its connection after its queue (the names BullMQ's
 * own getWorkers() matches; test/integration/dashboards.test.ts holds us to them), so one
 * `CLIENT LIST` per scrape serves every queue, where getWorkersCount() would list every client
 * once per queue. `dockhand_queue_ready_workers`
 * counts, for queues with a presence beacon (functions), the workers that renewed it: connected
 * and able to run the work (their Docker answers). When Redis cannot be read the gauges have no
 * samples for that scrape, rather than zeros that would read as "no workers".
 */
export function registerWorkerGauges(
  registry: Registry,
  deps: { redis: Redis; prefix: string; presenceQueues?: readonly QueueName[] },
): void {
  const presenceQueues = deps.presenceQueues ?? ['functions'];
  new Gauge({
    name: 'dockhand_queue_workers',
    help: 'BullMQ workers connected to Redis per queue, read at scrape time.',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      this.reset();
      const list = await deps.redis.client('LIST').catch(() => undefined);
      if (typeof list !== 'string') return;
      const counts = new Map<string, number>();
      for (const name of clientNames(list)) counts.set(name, (counts.get(name) ?? 0) + 1);
      for (const queue of queueNames) {
        const base = bullClientName(deps.prefix, queue);
        let n = counts.get(base) ?? 0;
        for (const [name, count] of counts) if (name.startsWith(`${base}:w:`)) n += count;
        this.set({ queue }, n);
      }
    },
  });
  new Gauge({
    name: 'dockhand_queue_ready_workers',
    help: 'Workers whose presence beacon says they can run the queue now (functions: Docker answers).',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      this.reset();
      const now = Date.now();
      const counts = await Promise.all(
        presenceQueues.map((queue) => deps.redis.zcount(workerPresenceKey(deps.prefix, queue), now, '+inf')),
      ).catch(() => undefined);
      presenceQueues.forEach((queue, i) => {
        const n = counts?.[i];
        if (n !== undefined) this.set({ queue }, n);
      });
    },
  });
}
