import type { Config } from '../core/config.ts';
import type { QueueName } from '../queues/registry.ts';

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
