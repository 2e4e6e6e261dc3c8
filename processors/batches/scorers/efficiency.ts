import { Type } from 'typebox';
import { defineMetric } from './define-metric.ts';
import { list, num, PERCENT, share, text } from './input-reader.ts';
import { curve, optionalNumber as N, weightedMean } from './kit.ts';

/**
 * Utilisation bands (share of capacity, 0–1): idle below 10%, wasteful below 40%, healthy
 * 40–70%, tight above 80%, saturated above 90%. Both ends score low: waste and risk.
 */
export const utilisationBand = curve([
  [0, 0.5],
  [0.1, 1],
  [0.2, 2.5],
  [0.4, 5],
  [0.7, 5],
  [0.8, 4],
  [0.9, 2],
  [1, 1],
]);

/** Average CPU as exports name it, for instances and databases alike. */
const AVERAGE_CPU = share([
  'cpu_avg',
  'avg_cpu',
  'cpu_average',
  'cpu_utilization',
  ['cpu_avg_percent', PERCENT],
  ['cpu_percent', PERCENT],
  ['cpu_utilization_percent', PERCENT],
]);

const COMPUTE = {
  instances: list(['instances', 'ec2_instances', 'vms', 'virtual_machines', 'servers']),
  id: text(['id', 'instance_id', 'name', 'arn']),
  cpu: AVERAGE_CPU,
  cpuP95: share(['cpu_p95', 'p95_cpu', ['cpu_p95_percent', PERCENT]]),
  mem: share([
    'mem_avg',
    'memory_avg',
    'avg_mem',
    'avg_memory',
    'mem_utilization',
    'memory_utilization',
    ['mem_avg_percent', PERCENT],
    ['mem_percent', PERCENT],
    ['memory_percent', PERCENT],
  ]),
  cost: num(['hourly_cost', 'cost_per_hour', 'price_per_hour', 'hourly_price', ['monthly_cost', 1 / 730]]),
};

export const computeUtilization = defineMetric({
  id: 'compute.utilization',
  input: Type.Object({
    instances: Type.Array(
      Type.Object({
        id: Type.String(),
        cpu_avg: N('0–1 over the window'),
        cpu_p95: N('0–1'),
        mem_avg: N('0–1'),
        hourly_cost: N('weight; default 1'),
      }),
    ),
  }),
  fields: {
    instances: COMPUTE.instances,
    'instances[].id': COMPUTE.id,
    'instances[].cpu_avg': COMPUTE.cpu,
    'instances[].cpu_p95': COMPUTE.cpuP95,
    'instances[].mem_avg': COMPUTE.mem,
    'instances[].hourly_cost': COMPUTE.cost,
  },
  keys: [['instances[].cpu_avg', 'instances[].mem_avg']],
  assess(input, r) {
    const per = r.items(input, COMPUTE.instances).map(({ value: inst, at }) => {
      const id = r.label(inst, COMPUTE.id, at) ?? at;
      const cpu = r.get(inst, COMPUTE.cpu, at);
      const p95 = r.opt(inst, COMPUTE.cpuP95, at);
      const mem = r.opt(inst, COMPUTE.mem, at);
      const cost = r.opt(inst, COMPUTE.cost, at) ?? 1;
      // Sustained peaks above 90% are a saturation risk however low the average is.
      const peak = p95 !== undefined && p95 > 0.9 ? utilisationBand(p95) : undefined;
      const fit = weightedMean([
        [cpu === undefined ? undefined : utilisationBand(cpu), 2],
        [mem === undefined ? undefined : utilisationBand(mem), 1],
      ]);
      return {
        id,
        score: fit === undefined ? undefined : peak === undefined ? fit : Math.min(fit, peak),
        cost,
        cpu,
      };
    });
    const idle = per.filter((p) => p.cpu !== undefined && p.cpu < 0.1).length;
    return {
      score: weightedMean(per.map((p) => [p.score, p.cost] as const)),
      rationale: `${per.length} instance(s) against a 40–70% utilisation band, weighted by cost; ${idle} idle below 10% CPU.`,
      evidence: { per_instance: per, idle_instances: idle },
    };
  },
});

const K8S = {
  clusters: list(['clusters', 'k8s_clusters', 'eks_clusters', 'gke_clusters', 'aks_clusters']),
  name: text(['name', 'cluster', 'cluster_name', 'id']),
  cpu: {
    allocatable: num(['cpu_allocatable', 'allocatable_cpu', 'cpu_allocatable_cores'], 1e-9),
    requested: num(['cpu_requested', 'cpu_requests', 'requested_cpu', 'cpu_request']),
    used: num(['cpu_used', 'cpu_usage', 'used_cpu']),
  },
  mem: {
    allocatable: num(
      ['mem_allocatable', 'memory_allocatable', 'allocatable_memory', 'allocatable_mem'],
      1e-9,
    ),
    requested: num([
      'mem_requested',
      'memory_requested',
      'mem_requests',
      'memory_requests',
      'requested_memory',
    ]),
    used: num(['mem_used', 'memory_used', 'mem_usage', 'memory_usage', 'used_memory']),
  },
};

export const k8sUtilization = defineMetric({
  id: 'k8s.utilization',
  input: Type.Object({
    clusters: Type.Array(
      Type.Object({
        name: Type.String(),
        cpu_allocatable: N('cores'),
        cpu_requested: N('cores'),
        cpu_used: N('cores, average'),
        mem_allocatable: N('GiB'),
        mem_requested: N('GiB'),
        mem_used: N('GiB, average'),
      }),
    ),
  }),
  fields: {
    clusters: K8S.clusters,
    'clusters[].name': K8S.name,
    'clusters[].cpu_allocatable': K8S.cpu.allocatable,
    'clusters[].cpu_requested': K8S.cpu.requested,
    'clusters[].cpu_used': K8S.cpu.used,
    'clusters[].mem_allocatable': K8S.mem.allocatable,
    'clusters[].mem_requested': K8S.mem.requested,
    'clusters[].mem_used': K8S.mem.used,
  },
  keys: ['clusters[].cpu_requested', 'clusters[].mem_requested'],
  assess(input, r) {
    const per = r.items(input, K8S.clusters).map(({ value: c, at }) => {
      const name = r.label(c, K8S.name, at) ?? at;
      const ratios: Array<[number | undefined, number]> = [];
      for (const res of [K8S.cpu, K8S.mem]) {
        const alloc = r.get(c, res.allocatable, at);
        const req = r.get(c, res.requested, at);
        const used = r.get(c, res.used, at);
        // Requests reserve nodes (allocation); usage against requests shows over-asking.
        if (alloc !== undefined && req !== undefined)
          ratios.push([utilisationBand(Math.min(1, req / alloc)), 1]);
        if (req !== undefined && req > 0 && used !== undefined)
          ratios.push([utilisationBand(Math.min(1, used / req)), 1]);
      }
      return { name, score: weightedMean(ratios) };
    });
    return {
      score: weightedMean(per.map((p) => [p.score, 1] as const)),
      rationale: `${per.length} cluster(s): requests against allocatable and usage against requests, both against the 40–70% band.`,
      evidence: { per_cluster: per },
    };
  },
});

const headroom = curve([
  [0.7, 5],
  [0.85, 3],
  [0.95, 1],
  [1, 0],
]);

const DB = {
  databases: list(['databases', 'dbs', 'db_instances', 'rds_instances', 'instances']),
  id: text(['id', 'db_instance_identifier', 'name', 'arn']),
  cpu: AVERAGE_CPU,
  connections: share([
    'connections_used',
    'connection_utilization',
    'connections_share',
    ['connections_used_percent', PERCENT],
    ['connections_percent', PERCENT],
  ]),
  storage: share([
    'storage_used',
    'storage_utilization',
    'disk_used',
    ['storage_used_percent', PERCENT],
    ['storage_percent', PERCENT],
    ['disk_used_percent', PERCENT],
  ]),
};

export const dbUtilization = defineMetric({
  id: 'db.utilization',
  input: Type.Object({
    databases: Type.Array(
      Type.Object({
        id: Type.String(),
        cpu_avg: N('0–1'),
        connections_used: N('share of max connections, 0–1'),
        storage_used: N('share of allocated storage, 0–1'),
      }),
    ),
  }),
  fields: {
    databases: DB.databases,
    'databases[].id': DB.id,
    'databases[].cpu_avg': DB.cpu,
    'databases[].connections_used': DB.connections,
    'databases[].storage_used': DB.storage,
  },
  keys: ['databases[].cpu_avg'],
  assess(input, r) {
    const per = r.items(input, DB.databases).map(({ value: db, at }) => {
      const id = r.label(db, DB.id, at) ?? at;
      const cpu = r.get(db, DB.cpu, at);
      const conns = r.opt(db, DB.connections, at);
      const storage = r.opt(db, DB.storage, at);
      const fit = cpu === undefined ? undefined : utilisationBand(cpu);
      // Connection and storage exhaustion are outages, so they cap the score rather than average in.
      const caps = [conns, storage].filter((x): x is number => x !== undefined).map(headroom);
      return { id, score: fit === undefined ? undefined : Math.min(fit, ...caps) };
    });
    return {
      score: weightedMean(per.map((p) => [p.score, 1] as const)),
      rationale: `${per.length} database(s): CPU against the 40–70% band, capped by connection and storage headroom.`,
      evidence: { per_database: per },
    };
  },
});
