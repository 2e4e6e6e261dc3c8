import { Type } from 'typebox';
import { defineMetric } from './define-metric.ts';
import { flag, list, num, PERCENT, share, text } from './input-reader.ts';
import { curve, optionalNumber as N, pct, round2, weightedMean } from './kit.ts';

// Error-budget burn (share of the budget used in the window) → score.
const burnScore = curve([
  [0, 5],
  [0.25, 4.5],
  [0.5, 4],
  [1, 2.5],
  [2, 1],
  [4, 0],
]);

const AV = {
  incidents: list(['incidents', 'outages'], { emptyMeansNone: true }),
  id: text(['id', 'incident_id', 'title', 'name']),
  severity: text(['severity', 'sev', 'priority', 'level']),
  duration: num([
    'duration_minutes',
    'impact_minutes',
    'downtime_minutes',
    'duration_min',
    'minutes',
    ['duration_seconds', 1 / 60],
    ['duration_hours', 60],
  ]),
  breaches: list(['slo_breaches', 'breaches', 'slo_violations'], { opaque: true }),
  objective: text(['slo.objective', 'sla.objective']),
  target: num(
    [
      'slo.target',
      'sla.target',
      'slo.availability_target',
      'availability_target',
      'slo_target',
      ['availability_target_percent', PERCENT],
    ],
    0.5,
    0.999999,
  ),
  window: num(['window_days', 'period_days', 'window'], 1),
};

/** sev1/sev2 (or P1/P2, critical/high/major) count fully, sev3 half, sev4 not. */
const severityWeight = (sev: string | undefined) => {
  const s = (sev ?? 'sev2').toLowerCase();
  if (/1|critical/.test(s)) return 1;
  if (/2|high|major/.test(s)) return 1;
  if (/3|medium|minor/.test(s)) return 0.5;
  return 0;
};

export const availabilityIncidents = defineMetric({
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
  fields: {
    incidents: AV.incidents,
    'incidents[].id': AV.id,
    'incidents[].severity': AV.severity,
    'incidents[].duration_minutes': AV.duration,
    slo_breaches: AV.breaches,
    'slo.objective': AV.objective,
    'slo.target': AV.target,
    window_days: AV.window,
  },
  keys: ['incidents[].duration_minutes', 'slo.target'],
  confidence: 0.85,
  assess(input, r) {
    const target = r.get(input, AV.target);
    const objective = r.label(input, AV.objective);
    const incidents = r.items(input, AV.incidents);
    const breaches = r.items(input, AV.breaches);
    const windowDays = r.opt(input, AV.window) ?? 30;
    let downtime = 0;
    let timed = 0;
    for (const { value, at } of incidents) {
      r.label(value, AV.id, at);
      const severity = r.opt(value, AV.severity, at);
      const minutes = r.get(value, AV.duration, at);
      if (minutes === undefined) continue;
      timed++;
      downtime += minutes * severityWeight(severity);
    }
    // No budget without a target; no burn without an incident log, or with one that times nothing.
    const untimed = !r.knows('incidents[].duration_minutes') || (incidents.length > 0 && timed === 0);
    if (target === undefined || untimed) return { score: undefined, rationale: '', evidence: {} };
    const budgetMinutes = (1 - target) * windowDays * 1440;
    const burn = downtime / budgetMinutes;
    // Each recorded SLO breach beyond the incidents costs half a point.
    return {
      score: burnScore(burn) - 0.5 * breaches.length,
      rationale: `${incidents.length} incident(s), ${round2(downtime)} weighted minutes of impact against an error budget of ${round2(budgetMinutes)} minutes (target ${target}${objective ? `, ${objective}` : ''}): ${pct(burn)} of the budget burned; ${breaches.length} SLO breach(es).`,
      evidence: {
        downtime_minutes: round2(downtime),
        budget_minutes: round2(budgetMinutes),
        budget_burn: round2(burn),
        slo_breaches: breaches.length,
      },
    };
  },
});

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

const latencyScore = curve([
  [60, 5],
  [180, 4],
  [300, 3],
  [600, 1.5],
  [1200, 0],
]);

const SCALING = {
  groups: list(['groups', 'autoscaling_groups', 'asgs', 'scaling_groups']),
  id: text(['id', 'name', 'auto_scaling_group_name', 'arn']),
  enabled: flag(['autoscaling_enabled', 'autoscaling', 'scaling_enabled', 'autoscale']),
  utilization: share([
    'avg_utilization',
    'utilization',
    'average_utilization',
    'avg_cpu',
    'cpu_avg',
    ['avg_utilization_percent', PERCENT],
    ['utilization_percent', PERCENT],
    ['avg_cpu_percent', PERCENT],
  ]),
  latency: num([
    'scale_out_latency_seconds',
    'scale_out_seconds',
    'scale_out_time_seconds',
    'time_to_scale_seconds',
    ['scale_out_latency_minutes', 60],
  ]),
  flaps: num(['flapping_events', 'flaps', 'flapping']),
  shortfall: num(['capacity_shortfall_minutes', 'shortfall_minutes', 'at_max_capacity_minutes']),
};

export const scalingEffectiveness = defineMetric({
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
  fields: {
    groups: SCALING.groups,
    'groups[].id': SCALING.id,
    'groups[].autoscaling_enabled': SCALING.enabled,
    'groups[].avg_utilization': SCALING.utilization,
    'groups[].scale_out_latency_seconds': SCALING.latency,
    'groups[].flapping_events': SCALING.flaps,
    'groups[].capacity_shortfall_minutes': SCALING.shortfall,
  },
  // A group stated not to autoscale needs neither utilisation nor latency.
  keys: [
    ['groups[].avg_utilization', 'groups[].autoscaling_enabled'],
    ['groups[].scale_out_latency_seconds', 'groups[].autoscaling_enabled'],
  ],
  confidence: 0.8,
  assess(input, r) {
    const per = r.items(input, SCALING.groups).map(({ value: g, at }) => {
      const id = r.label(g, SCALING.id, at) ?? at;
      // A group that cannot scale scores 1 whatever else it reports.
      if (r.opt(g, SCALING.enabled, at) === false) return { id, score: 1 };
      const util = r.get(g, SCALING.utilization, at);
      const lat = r.get(g, SCALING.latency, at);
      const flaps = r.opt(g, SCALING.flaps, at) ?? 0;
      const shortfall = r.opt(g, SCALING.shortfall, at) ?? 0;
      const base = weightedMean([
        [util === undefined ? undefined : utilisationFit(util), 1],
        [lat === undefined ? undefined : latencyScore(lat), 1],
      ]);
      const penalty = Math.min(2, flaps * 0.1) + Math.min(2, shortfall / 60);
      return { id, score: base === undefined ? undefined : base - penalty };
    });
    return {
      score: weightedMean(per.map((p) => [p.score, 1] as const)),
      rationale: `${per.length} scaling group(s): utilisation against a 60–75% target, scale-out latency, flapping and time short of capacity.`,
      evidence: { per_group: per },
    };
  },
});

const IAC = {
  total: num(['resources_total', 'total_resources', 'resource_count', 'total'], 1),
  managed: num(['resources_managed', 'managed_resources', 'managed', 'iac_managed', 'resources_in_state']),
  drifted: num(['drifted_resources', 'resources_drifted', 'drifted', 'drift_count', 'drifted_count']),
};

export const iacCoverageDrift = defineMetric({
  id: 'iac.coverage_drift',
  input: Type.Object({
    resources_total: N(),
    resources_managed: N('resources under Terraform/CloudFormation/Pulumi state'),
    drifted_resources: N('managed resources whose live config differs from code'),
  }),
  fields: { resources_total: IAC.total, resources_managed: IAC.managed, drifted_resources: IAC.drifted },
  keys: ['resources_total', 'resources_managed', 'drifted_resources'],
  assess(input, r) {
    const total = r.get(input, IAC.total);
    const managed = r.get(input, IAC.managed);
    const drifted = r.get(input, IAC.drifted);
    // Coverage is the rubric's base: without both counts there is nothing to score.
    if (total === undefined || managed === undefined)
      return { score: undefined, rationale: '', evidence: {} };
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
    return {
      score: coverageScore - driftPenalty,
      rationale: `${pct(coverage)} of resources managed as code, ${pct(driftRate)} of those drifted.`,
      evidence: { coverage: round2(coverage), drift_rate: round2(driftRate) },
    };
  },
});
