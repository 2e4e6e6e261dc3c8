import { Type } from 'typebox';
import { defineMetric } from './define-metric.ts';
import { list, num, object, PERCENT, share, text } from './input-reader.ts';
import { curve, optionalNumber as N, round2, weightedMean } from './kit.ts';

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

const LB = {
  list: list(['load_balancers', 'lbs', 'albs', 'elbs']),
  id: text(['id', 'name', 'arn', 'load_balancer_name', 'load_balancer_arn']),
  p95: num([
    'lat_p95',
    'p95_latency_ms',
    'latency_p95_ms',
    'latency_p95',
    'p95_ms',
    ['p95_latency_seconds', 1000],
  ]),
  p99: num([
    'lat_p99',
    'p99_latency_ms',
    'latency_p99_ms',
    'latency_p99',
    'p99_ms',
    ['p99_latency_seconds', 1000],
  ]),
  r5xx: share([
    'r5xx',
    '5xx_rate',
    'rate_5xx',
    'error_rate_5xx',
    'http_5xx_rate',
    'error_rate',
    ['5xx_percent', PERCENT],
    ['error_rate_percent', PERCENT],
  ]),
  unhealthy: num(['unhealthy_minutes', 'unhealthy_host_minutes', 'unhealthy_target_minutes']),
  requests: num(['requests', 'request_count', 'requests_total']),
  slo: object(['slo', 'slos', 'objectives']),
  sloP95: num(['p95_ms', 'lat_p95', 'latency_p95_ms', 'p95'], 1),
  sloP99: num(['p99_ms', 'lat_p99', 'latency_p99_ms', 'p99'], 1),
  slo5xx: num(['5xx_rate_max', 'max_5xx_rate', 'r5xx_max', 'error_rate_max', '5xx_rate', 'r5xx'], 1e-9, 1),
  window: num(['window_days', 'period_days', 'window'], 1),
};

export const lbPerformance = defineMetric({
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
  fields: {
    load_balancers: LB.list,
    'load_balancers[].id': LB.id,
    'load_balancers[].lat_p95': LB.p95,
    'load_balancers[].lat_p99': LB.p99,
    'load_balancers[].r5xx': LB.r5xx,
    'load_balancers[].unhealthy_minutes': LB.unhealthy,
    'load_balancers[].requests': LB.requests,
    slo: LB.slo,
    'slo.p95_ms': LB.sloP95,
    'slo.p99_ms': LB.sloP99,
    'slo.5xx_rate_max': LB.slo5xx,
    window_days: LB.window,
  },
  keys: ['load_balancers[].lat_p95', 'load_balancers[].lat_p99', 'load_balancers[].r5xx'],
  assess(input, r) {
    const sloObject = r.opt(input, LB.slo);
    const slo = {
      p95: r.get(sloObject, LB.sloP95, 'slo'),
      p99: r.get(sloObject, LB.sloP99, 'slo'),
      r5xx: r.get(sloObject, LB.slo5xx, 'slo'),
    };
    const windowMinutes = (r.opt(input, LB.window) ?? 30) * 1440;
    const per = r.items(input, LB.list).map(({ value: lb, at }) => {
      const id = r.label(lb, LB.id, at) ?? at;
      const p95 = r.get(lb, LB.p95, at);
      const p99 = r.get(lb, LB.p99, at);
      const err = r.get(lb, LB.r5xx, at);
      const unhealthy = r.opt(lb, LB.unhealthy, at) ?? 0;
      const requests = r.opt(lb, LB.requests, at) ?? 1;
      const parts = [
        p95 !== undefined && slo.p95 ? sloRatio(p95 / slo.p95) : undefined,
        p99 !== undefined && slo.p99 ? sloRatio(p99 / slo.p99) : undefined,
        err !== undefined && slo.r5xx ? sloRatio(err / slo.r5xx) : undefined,
      ].filter((x): x is number => x !== undefined);
      // The worst dimension rules: a fast LB that fails requests is not healthy.
      const base = parts.length ? Math.min(...parts) : undefined;
      // Unhealthy time costs up to 1.5 points: 0.1% of the window (~43 min a month) costs 0.5.
      const penalty = Math.min(1.5, (unhealthy / windowMinutes) * 500);
      return { id, score: base === undefined ? undefined : base - penalty, requests, p95, err };
    });
    const score = weightedMean(per.map((p) => [p.score, p.requests] as const));
    const worst = per.filter((p) => p.score !== undefined).sort((a, b) => (a.score ?? 0) - (b.score ?? 0))[0];
    return {
      score,
      rationale:
        per.length === 0
          ? 'No load balancers to score.'
          : `${per.length} load balancer(s) against SLO p95 ${slo.p95} ms, p99 ${slo.p99} ms, 5xx ≤ ${slo.r5xx}; weakest ${worst?.id} at ${round2(worst?.score ?? 0)}.`,
      evidence: { per_load_balancer: per, slo },
    };
  },
});
