import os from 'node:os';
import si from 'systeminformation';
import { statfsNearest } from './capabilities.ts';
import type { NodeMetrics } from './protocol.ts';

interface CpuTotals {
  idle: number;
  total: number;
}

function cpuTotals(cpus: readonly os.CpuInfo[]): CpuTotals {
  let idle = 0;
  let total = 0;
  for (const { times } of cpus) {
    idle += times.idle;
    total += times.user + times.nice + times.sys + times.idle + times.irq;
  }
  return { idle, total };
}

const oneDecimal = (n: number) => Math.round(Math.min(100, Math.max(0, n)) * 10) / 10;

/** Busy share of CPU time between two samples, in percent (0 when no time passed). */
export function cpuPercent(before: CpuTotals, after: CpuTotals): number {
  const total = after.total - before.total;
  if (total <= 0) return 0;
  return oneDecimal(100 * (1 - (after.idle - before.idle) / total));
}

export interface MetricsSamplerOptions {
  dataDir: string;
  /** Injected for tests; default os.cpus. */
  cpus?: () => os.CpuInfo[];
  /** Injected for tests; default systeminformation's mem(). */
  memory?: () => Promise<{ total: number; available: number }>;
}

/**
 * cpu_usage, mem_usage and disk_free_mb as the MIaaS agent sent them (psutil's cpu_percent,
 * virtual_memory().percent, disk free). CPU is measured over the time since the previous
 * sample (the first one: since the sampler was made), from os.cpus() counters, which costs
 * nothing, where systeminformation's currentLoad() would spend half a second measuring.
 */
export function createMetricsSampler(options: MetricsSamplerOptions): () => Promise<NodeMetrics> {
  const cpus = options.cpus ?? os.cpus;
  const memory = options.memory ?? (() => si.mem());
  let last = cpuTotals(cpus());
  return async () => {
    const now = cpuTotals(cpus());
    const cpu_usage = cpuPercent(last, now);
    last = now;
    const [mem, disk] = await Promise.all([
      memory().catch(() => ({ total: os.totalmem(), available: os.freemem() })),
      statfsNearest(options.dataDir).catch(() => ({ freeMb: 0 })),
    ]);
    const mem_usage = mem.total > 0 ? oneDecimal((100 * (mem.total - mem.available)) / mem.total) : 0;
    return { cpu_usage, mem_usage, disk_free_mb: disk.freeMb };
  };
}
