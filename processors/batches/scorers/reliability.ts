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
 * Ratio of an observed value to its SLO bound → score. At half the bound: 5; exactly on the
 * bound: 3.5 (met, no margin); twice the bound: 1; three times: 0.
 */
const sloRatio = curve([
  [0.5, 5],
  [1, 3.5],
  [1.5, 2],
  [2, 1],
  [3, 0],
]);

export const lbPerformance: MetricScorer = {
  id: 'lb.performance',
  input: Type.Object({
    load_balancers: Type.Array(
      Type.Object({
        id: Type.String(),
        lat_p95: N('p95 latency, ms'),
        lat_p99: N('p99 latency, ms'),
        r5xx: N('5xx share of requests, 0–1'),
        unhealthy_minutes: N('minutes with unhealthy targets in the window'),
        requests: N('requests in the window (weight)'),
      }),
    ),
    slo: Type.Object({ p95_ms: N(), p99_ms: N(), '5xx_rate_max': N() }),
    window_days: N('default 30'),
  }),
  score(input) {
    const r = new InputReader();
    const slo = {
      p95: r.num(input, 'slo.p95_ms', 'slo.p95_ms', 1),
      p99: r.num(input, 'slo.p99_ms', 'slo.p99_ms', 1),
      r5xx: r.num(input, 'slo.5xx_rate_max', 'slo.5xx_rate_max', 1e-9, 1),
    };
    const windowMinutes = (r.optNum(input, 'window_days', 'window_days', 1) ?? 30) * 1440;
    const per = r.items(input, 'load_balancers').map((lb, i) => {
      const label = `load_balancers[${i}]`;
      const p95 = r.num(lb, 'lat_p95', `${label}.lat_p95`);
      const p99 = r.num(lb, 'lat_p99', `${label}.lat_p99`);
      const err = r.num(lb, 'r5xx', `${label}.r5xx`, 0, 1);
      const unhealthy = r.optNum(lb, 'unhealthy_minutes', `${label}.unhealthy_minutes`) ?? 0;
      const requests = r.optNum(lb, 'requests', `${label}.requests`) ?? 1;
      const parts = [
        p95 !== undefined && slo.p95 ? sloRatio(p95 / slo.p95) : undefined,
        p99 !== undefined && slo.p99 ? sloRatio(p99 / slo.p99) : undefined,
        err !== undefined && slo.r5xx ? sloRatio(err / slo.r5xx) : undefined,
      ].filter((x): x is number => x !== undefined);
      // The worst dimension rules: a fast LB that fails requests is not healthy.
      const base = parts.length ? Math.min(...parts) : undefined;
      // Unhealthy time costs up to 1.5 points: 0.1% of the window (~43 min a month) costs 0.5.
      const penalty = Math.min(1.5, (unhealthy / windowMinutes) * 500);
      return {
        id: (lb as { id?: string })?.id ?? label,
        score: base === undefined ? undefined : base - penalty,
        requests,
        p95,
        err,
      };
    });
    const score = weightedMean(per.map((p) => [p.score, p.requests] as const));
    const worst = per.filter((p) => p.score !== undefined).sort((a, b) => (a.score ?? 0) - (b.score ?? 0))[0];
    return result(
      this.id,
      r,
      score,
      per.length === 0
        ? 'No load balancers to score.'
        : `${per.length} load balancer(s) against SLO p95 ${slo.p95} ms, p99 ${slo.p99} ms, 5xx ≤ ${slo.r5xx}; weakest ${worst?.id} at ${round2(worst?.score ?? 0)}.`,
      { per_load_balancer: per, slo },
    );
  },
};

// Error-budget burn (share of the budget used in the window) → score.
const burnScore = curve([
  [0, 5],
  [0.25, 4.5],
  [0.5, 4],
  [1, 2.5],
  [2, 1],
  [4, 0],
]);

export const availabilityIncidents: MetricScorer = {
  id: 'availability.incidents',
  input: Type.Object({
    incidents: Type.Array(
      Type.Object({
        id: Type.Optional(Type.String()),
        severity: Type.Optional(
          Type.String({ description: 'sev1…sev4; sev1/sev2 count fully, sev3 half, sev4 not' }),
        ),
        duration_minutes: N('customer-facing impact'),
      }),
    ),
    slo_breaches: Type.Array(Type.Unknown()),
    slo: Type.Object({ objective: Type.Optional(Type.String()), target: N('e.g. 0.999') }),
    window_days: N('default 30'),
  }),
  score(input) {
    const r = new InputReader();
    const target = r.num(input, 'slo.target', 'slo.target', 0.5, 0.999999);
    const incidents = r.items(input, 'incidents');
    const breaches = r.items(input, 'slo_breaches');
    const windowDays = r.optNum(input, 'window_days', 'window_days', 1) ?? 30;
    const weightOf = (sev: unknown) => {
      const s = String(sev ?? 'sev2').toLowerCase();
      if (/1|critical/.test(s)) return 1;
      if (/2|high|major/.test(s)) return 1;
      if (/3|medium|minor/.test(s)) return 0.5;
      return 0;
    };
    let downtime = 0;
    incidents.forEach((inc, i) => {
      const minutes = r.num(inc, 'duration_minutes', `incidents[${i}].duration_minutes`);
      downtime += (minutes ?? 0) * weightOf((inc as { severity?: unknown })?.severity);
    });
    if (target === undefined) return result(this.id, r, undefined, '', {});
    const budgetMinutes = (1 - target) * windowDays * 1440;
    const burn = downtime / budgetMinutes;
    // Each recorded SLO breach beyond the incidents costs half a point.
    const score = burnScore(burn) - 0.5 * breaches.length;
    return result(
      this.id,
      r,
      score,
      `${incidents.length} incident(s), ${round2(downtime)} weighted minutes of impact against an error budget of ${round2(budgetMinutes)} minutes (target ${target}): ${pct(burn)} of the budget burned; ${breaches.length} SLO breach(es).`,
      {
        downtime_minutes: round2(downtime),
        budget_minutes: round2(budgetMinutes),
        budget_burn: round2(burn),
        slo_breaches: breaches.length,
      },
      0.85,
    );
  },
};

const utilisationFit = curve([
  [0, 1],
  [0.3, 2.5],
  [0.5, 4],
  [0.6, 5],
  [0.75, 5],
  [0.85, 3.5],
  [0.95, 1.5],
  [1, 1],
]);

export const scalingEffectiveness: MetricScorer = {
  id: 'scaling.effectiveness',
  input: Type.Object({
    groups: Type.Array(
      Type.Object({
        id: Type.String(),
        autoscaling_enabled: Type.Optional(Type.Boolean()),
        avg_utilization: N('0–1, against the scaling target resource'),
        scale_out_latency_seconds: N('demand spike → capacity ready'),
        flapping_events: N('scale-in followed by scale-out within 10 minutes, per week'),
        capacity_shortfall_minutes: N('minutes at max capacity with demand above it, per week'),
      }),
    ),
  }),
  score(input) {
    const r = new InputReader();
    const latency = curve([
      [60, 5],
      [180, 4],
      [300, 3],
      [600, 1.5],
      [1200, 0],
    ]);
    const per = r.items(input, 'groups').map((g, i) => {
      const label = `groups[${i}]`;
      const enabled = (g as { autoscaling_enabled?: unknown })?.autoscaling_enabled;
      if (enabled === false) return { id: (g as { id?: string })?.id ?? label, score: 1 };
      const util = r.num(g, 'avg_utilization', `${label}.avg_utilization`, 0, 1);
      const lat = r.num(g, 'scale_out_latency_seconds', `${label}.scale_out_latency_seconds`);
      const flaps = r.optNum(g, 'flapping_events', `${label}.flapping_events`) ?? 0;
      const shortfall = r.optNum(g, 'capacity_shortfall_minutes', `${label}.capacity_shortfall_minutes`) ?? 0;
      const base = weightedMean([
        [util === undefined ? undefined : utilisationFit(util), 1],
        [lat === undefined ? undefined : latency(lat), 1],
      ]);
      const penalty = Math.min(2, flaps * 0.1) + Math.min(2, shortfall / 60);
      return {
        id: (g as { id?: string })?.id ?? label,
        score: base === undefined ? undefined : base - penalty,
      };
    });
    const score = weightedMean(per.map((p) => [p.score, 1] as const));
    return result(
      this.id,
      r,
      score,
      `${per.length} scaling group(s): utilisation against a 60–75% target, scale-out latency, flapping and time short of capacity.`,
      { per_group: per },
      0.8,
    );
  },
};

export const iacCoverageDrift: MetricScorer = {
  id: 'iac.coverage_drift',
  input: Type.Object({
    resources_total: N(),
    resources_managed: N('resources under Terraform/CloudFormation/Pulumi state'),
    drifted_resources: N('managed resources whose live config differs from code'),
  }),
  score(input) {
    const r = new InputReader();
    const total = r.num(input, 'resources_total', 'resources_total', 1);
    const managed = r.num(input, 'resources_managed', 'resources_managed', 0);
    const drifted = r.num(input, 'drifted_resources', 'drifted_resources', 0);
    if (total === undefined || managed === undefined) return result(this.id, r, undefined, '', {});
    if (managed > total) r.gap('resources_managed exceeds resources_total; capped.');
    const coverage = Math.min(1, managed / total);
    const driftRate = managed > 0 && drifted !== undefined ? Math.min(1, drifted / managed) : 0;
    const coverageScore = curve([
      [0, 0],
      [0.5, 1.5],
      [0.8, 3.5],
      [0.95, 5],
    ])(coverage);
    // Drift erodes what coverage promises: 5% drifted costs a point, 20% costs 3.
    const driftPenalty = curve([
      [0, 0],
      [0.05, 1],
      [0.2, 3],
      [0.5, 5],
    ])(driftRate);
    return result(
      this.id,
      r,
      coverageScore - driftPenalty,
      `${pct(coverage)} of resources managed as code, ${pct(driftRate)} of those drifted.`,
      { coverage: round2(coverage), drift_rate: round2(driftRate) },
    );
  },
};
