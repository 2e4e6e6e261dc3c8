import type { Config } from '../core/config.ts';
import { type QueueName, queueNames } from '../queues/registry.ts';

/** What one process role wires: its HTTP surface, the queues it works, and whether it keeps the tick. */
export interface RoleSpec {
  /**
   * `api`: the whole public API plus the ingresses that feed it (SQS) and the waiter that
   * answers sync calls. `ops`: only /health, /ready and /metrics, for Prometheus and probes.
   */
  http: 'api' | 'ops';
  /** Queues this process runs a BullMQ worker for. */
  queues: readonly QueueName[];
  /** Keeps the repeatable tick job in Redis (idempotent across replicas). */
  tick: boolean;
  /** Answers the Exec Agent's `exec-requests` channel on `exec-responses` (queues/exec/bridge.ts). */
  bridge?: boolean;
}

/** Runs work (queues besides the tick): a node's worker, which runs the node agent. */
export const worksQueues = (spec: RoleSpec) => spec.queues.some((queue) => queue !== 'scheduler');

/**
 * The port a role listens on: a worker-only process serves /health, /ready and /metrics on
 * WORKER_METRICS_PORT, so it can share a machine with a gateway on PORT.
 */
export function httpPort(spec: RoleSpec, config: Config): number {
  return spec.http === 'ops' && worksQueues(spec) ? config.nodes.workerMetricsPort : config.server.port;
}

/**
 * Jobs of each queue one process runs at once. Batches are file I/O bound (fsync per result),
 * so many run at once; their state updates share group commits of processed.json. The rest
 * (sweeps, the tick) one at a time.
 */
export function queueConcurrency(config: Config): Record<QueueName, number> {
  const set: Partial<Record<QueueName, number>> = {
    'http-jobs': config.httpJobs.concurrency,
    batches: config.batches.concurrency,
    functions: config.functions.concurrency,
    exec: config.exec.concurrency,
  };
  return Object.fromEntries(queueNames.map((name) => [name, set[name] ?? 1])) as Record<QueueName, number>;
}
