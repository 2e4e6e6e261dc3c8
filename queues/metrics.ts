import type { Worker } from 'bullmq';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { QueueSet } from './queue-set.ts';
import { queueNames } from './registry.ts';

const STATES = ['waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized'] as const;

/**
 * Queue depth per state, read from Redis when Prometheus scrapes, so it is true across processes.
 * While Redis is not connected a scrape has no samples of it (a gap, not stale counts) and does
 * not wait: queues that never had a connection would hold the scrape until Redis came back.
 */
export function registerQueueGauges(
  registry: Registry,
  queues: QueueSet,
  redisReady: () => boolean = () => true,
): void {
  new Gauge({
    name: 'dockhand_queue_jobs',
    help: 'Jobs per queue and state, read at scrape time.',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      if (!redisReady()) return this.reset();
      const counts = await Promise.all(queueNames.map((name) => queues[name].getJobCounts(...STATES)));
      queueNames.forEach((name, i) => {
        for (const state of STATES) this.set({ queue: name, state }, counts[i]?.[state] ?? 0);
      });
    },
  });
}

/** Per-queue job timings and outcomes, recorded by the process that runs the worker. */
export function createJobMetrics(registry: Registry) {
  const duration = new Histogram({
    name: 'dockhand_job_duration_seconds',
    help: 'Time from a worker taking a job to its finishing, per queue and outcome.',
    labelNames: ['queue', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const completed = new Counter({
    name: 'dockhand_jobs_completed_total',
    help: 'Jobs that completed, per queue.',
    labelNames: ['queue'],
    registers: [registry],
  });
  const failed = new Counter({
    name: 'dockhand_jobs_failed_total',
    help: 'Job attempts that failed, per queue.',
    labelNames: ['queue'],
    registers: [registry],
  });
  return {
    instrument(worker: Worker): void {
      const queue = worker.name;
      worker.on('completed', (job) => {
        completed.inc({ queue });
        if (job.processedOn && job.finishedOn) {
          duration.observe({ queue, status: 'completed' }, (job.finishedOn - job.processedOn) / 1000);
        }
      });
      worker.on('failed', (job) => {
        failed.inc({ queue });
        if (job?.processedOn && job.finishedOn) {
          duration.observe({ queue, status: 'failed' }, (job.finishedOn - job.processedOn) / 1000);
        }
      });
    },
  };
}
export type JobMetrics = ReturnType<typeof createJobMetrics>;
