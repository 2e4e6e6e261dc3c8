import { Type } from 'typebox';
import {
  curve,
  InputReader,
  type MetricScorer,
  optionalNumber as N,
  pct,
  result,
  round2,
  weightedMean,
} from './kit.ts';

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

export const computeUtilization: MetricScorer = {
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
  score(input) {
    const r = new InputReader();
    const per = r.items(input, 'instances').map((inst, i) => {
      const label = `instances[${i}]`;
      const cpu = r.num(inst, 'cpu_avg', `${label}.cpu_avg`, 0, 1);
      const p95 = r.optNum(inst, 'cpu_p95', `${label}.cpu_p95`, 0, 1);
      const mem = r.optNum(inst, 'mem_avg', `${label}.mem_avg`, 0, 1);
      const cost = r.optNum(inst, 'hourly_cost', `${label}.hourly_cost`) ?? 1;
      // Sustained peaks above 90% are a saturation risk however low the average is.
      const peak = p95 !== undefined && p95 > 0.9 ? utilisationBand(p95) : undefined;
      const fit = weightedMean([
        [cpu === undefined ? undefined : utilisationBand(cpu), 2],
        [mem === undefined ? undefined : utilisationBand(mem), 1],
      ]);
      return {
        id: (inst as { id?: string })?.id ?? label,
        score: fit === undefined ? undefined : peak === undefined ? fit : Math.min(fit, peak),
        cost,
        cpu,
      };
    });
    const score = weightedMean(per.map((p) => [p.score, p.cost] as const));
    const idle = per.filter((p) => p.cpu !== undefined && p.cpu < 0.1).length;
    return result(
      this.id,
      r,
      score,
      `${per.length} instance(s) against a 40–70% utilisation band, weighted by cost; ${idle} idle below 10% CPU.`,
      { per_instance: per, idle_instances: idle },
    );
  },
};

export const k8sUtilization: MetricScorer = {
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
  score(input) {
    const r = new InputReader();
    const per = r.items(input, 'clusters').map((c, i) => {
      const label = `clusters[${i}]`;
      const ratios: Array<[number | undefined, number]> = [];
      for (const res of ['cpu', 'mem'] as const) {
        const alloc = r.num(c, `${res}_allocatable`, `${label}.${res}_allocatable`, 1e-9);
        const req = r.num(c, `${res}_requested`, `${label}.${res}_requested`);
        const used = r.num(c, `${res}_used`, `${label}.${res}_used`);
        // Requests reserve nodes (allocation); usage against requests shows over-asking.
        if (alloc !== undefined && req !== undefined)
          ratios.push([utilisationBand(Math.min(1, req / alloc)), 1]);
        if (req !== undefined && req > 0 && used !== undefined)
          ratios.push([utilisationBand(Math.min(1, used / req)), 1]);
      }
      return { name: (c as { name?: string })?.name ?? label, score: weightedMean(ratios) };
    });
    return result(
      this.id,
      r,
      weightedMean(per.map((p) => [p.score, 1] as const)),
      `${per.length} cluster(s): requests against allocatable and usage against requests, both against the 40–70% band.`,
      { per_cluster: per },
    );
  },
};

export const dbUtilization: MetricScorer = {
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
  score(input) {
    const r = new InputReader();
    const headroom = curve([
      [0.7, 5],
      [0.85, 3],
      [0.95, 1],
      [1, 0],
    ]);
    const per = r.items(input, 'databases').map((db, i) => {
      const label = `databases[${i}]`;
      const cpu = r.num(db, 'cpu_avg', `${label}.cpu_avg`, 0, 1);
      const conns = r.optNum(db, 'connections_used', `${label}.connections_used`, 0, 1);
      const storage = r.optNum(db, 'storage_used', `${label}.storage_used`, 0, 1);
      const fit = cpu === undefined ? undefined : utilisationBand(cpu);
      // Connection and storage exhaustion are outages, so they cap the score rather than average in.
      const caps = [conns, storage].filter((x): x is number => x !== undefined).map(headroom);
      return {
        id: (db as { id?: string })?.id ?? label,
        score: fit === undefined ? undefined : Math.min(fit, ...caps),
      };
    });
    return result(
      this.id,
      r,
      weightedMean(per.map((p) => [p.score, 1] as const)),
      `${per.length} database(s): CPU against the 40–70% band, capped by connection and storage headroom.`,
      { per_database: per },
    );
  },
};

export const storageEfficiency: MetricScorer = {
  id: 'storage.efficiency',
  input: Type.Object({
    volumes: Type.Array(
      Type.Object({ id: Type.String(), size_gb: N(), used_gb: N(), attached: Type.Optional(Type.Boolean()) }),
    ),
    snapshots: Type.Optional(Type.Array(Type.Object({ id: Type.String(), size_gb: N(), age_days: N() }))),
    buckets: Type.Optional(
      Type.Array(Type.Object({ id: Type.String(), lifecycle_policy: Type.Optional(Type.Boolean()) })),
    ),
  }),
  score(input) {
    const r = new InputReader();
    let size = 0;
    let used = 0;
    let unattached = 0;
    r.items(input, 'volumes').forEach((v, i) => {
      const s = r.num(v, 'size_gb', `volumes[${i}].size_gb`) ?? 0;
      const u = r.optNum(v, 'used_gb', `volumes[${i}].used_gb`) ?? 0;
      size += s;
      used += Math.min(u, s);
      if ((v as { attached?: unknown })?.attached === false) unattached += s;
    });
    if (size === 0) return result(this.id, r, undefined, '', {});
    const snapshots = Array.isArray((input as { snapshots?: unknown })?.snapshots)
      ? ((input as { snapshots: unknown[] }).snapshots ?? [])
      : [];
    const snapshotGb = snapshots.reduce<number>(
      (acc, s) => acc + (Number((s as { size_gb?: unknown })?.size_gb) || 0),
      0,
    );
    const oldSnapshotGb = snapshots.reduce<number>(
      (acc, s) =>
        acc +
        ((Number((s as { age_days?: unknown })?.age_days) || 0) > 90
          ? Number((s as { size_gb?: unknown })?.size_gb) || 0
          : 0),
      0,
    );
    const buckets = Array.isArray((input as { buckets?: unknown })?.buckets)
      ? (input as { buckets: unknown[] }).buckets
      : [];
    const lifecycle = buckets.length
      ? buckets.filter((b) => (b as { lifecycle_policy?: unknown })?.lifecycle_policy === true).length /
        buckets.length
      : undefined;
    const usedShare = used / size;
    const unattachedShare = unattached / size;
    const oldShare = snapshotGb > 0 ? oldSnapshotGb / snapshotGb : 0;
    const score = weightedMean([
      [
        curve([
          [0.2, 1],
          [0.5, 3],
          [0.7, 5],
        ])(usedShare),
        2,
      ],
      [
        curve([
          [0, 5],
          [0.1, 3],
          [0.3, 1],
          [0.5, 0],
        ])(unattachedShare),
        2,
      ],
      [
        curve([
          [0, 5],
          [0.3, 3],
          [0.7, 1],
        ])(oldShare),
        1,
      ],
      [lifecycle === undefined ? undefined : 5 * lifecycle, 1],
    ]);
    return result(
      this.id,
      r,
      score,
      `${pct(usedShare)} of provisioned volume space used, ${pct(unattachedShare)} unattached, ${pct(oldShare)} of snapshot space older than 90 days${lifecycle === undefined ? '' : `, ${pct(lifecycle)} of buckets with lifecycle rules`}.`,
      {
        used_share: round2(usedShare),
        unattached_share: round2(unattachedShare),
        old_snapshot_share: round2(oldShare),
        lifecycle_coverage: lifecycle,
      },
      0.8,
    );
  },
};
