import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { InvocationResult } from '../../queues/schemas/functions.ts';
import type { PoolEvent, WarmPool } from '../../runtimes/warm-pool.ts';

/** The Infra-worker's metric names, kept for its dashboards, plus the pool's own. */
export function createFunctionMetrics(registry: Registry) {
  const evalDuration = new Histogram({
    name: 'worker_eval_duration_seconds',
    help: 'Function execution time inside the container, by runtime.',
    labelNames: ['runtime'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const processed = new Counter({
    name: 'worker_jobs_processed_total',
    help: 'Invocations finished, by status.',
    labelNames: ['status'],
    registers: [registry],
  });
  const cpu = new Counter({
    name: 'worker_cpu_usage_seconds',
    help: 'CPU time consumed by function containers while invoked.',
    labelNames: ['runtime'],
    registers: [registry],
  });
  const peak = new Gauge({
    name: 'worker_memory_peak_bytes',
    help: 'Peak memory of the last invocation, by runtime.',
    labelNames: ['runtime'],
    registers: [registry],
  });
  const starts = new Counter({
    name: 'dockhand_cold_starts_total',
    help: 'Invocations that had to create a container.',
    labelNames: ['runtime'],
    registers: [registry],
  });
  const warm = new Counter({
    name: 'dockhand_warm_starts_total',
    help: 'Invocations served by a pre-started container: reused (warm) or specialised from the generic pool.',
    labelNames: ['runtime', 'kind'],
    registers: [registry],
  });
  const replaced = new Counter({
    name: 'dockhand_pool_replaced_total',
    help: 'Containers destroyed after a timeout, crash, OOM or output flood.',
    labelNames: ['runtime'],
    registers: [registry],
  });
  const telemetryErrors = new Counter({
    name: 'dockhand_telemetry_errors_total',
    help: 'Copies of a result that could not be kept (tuning history, pub/sub, S3 log); the invocation itself succeeded.',
    labelNames: ['sink'],
    registers: [registry],
  });
  return {
    onTelemetryError(sink: string) {
      telemetryErrors.inc({ sink });
    },
    onPoolEvent(event: PoolEvent, runtime: string) {
      if (event === 'cold') starts.inc({ runtime });
      else if (event === 'warm' || event === 'specialised') warm.inc({ runtime, kind: event });
      else if (event === 'replaced') replaced.inc({ runtime });
    },
    onResult(result: InvocationResult, runtime: string) {
      evalDuration.observe({ runtime }, result.durationMs / 1000);
      processed.inc({ status: result.status });
      cpu.inc({ runtime }, (result.resources.cpuUsagePercent / 100) * (result.durationMs / 1000));
      peak.set({ runtime }, result.resources.memoryUsedMb * 1024 * 1024);
    },
    registerPool(pool: WarmPool) {
      new Gauge({
        name: 'dockhand_pool_containers',
        help: 'Function containers by runtime and state (generic = pre-started, not yet a function’s).',
        labelNames: ['runtime', 'state'],
        registers: [registry],
        collect() {
          const stats = pool.stats();
          for (const [runtime, n] of Object.entries(stats.generic))
            this.set({ runtime, state: 'generic' }, n);
          for (const [runtime, n] of Object.entries(pool.busyByRuntime()))
            this.set({ runtime, state: 'busy' }, n);
          this.set({ runtime: 'all', state: 'idle_bound' }, stats.idleBound);
        },
      });
    },
  };
}
