import { Type } from 'typebox';
import { defineMetric } from './define-metric.ts';
import { field, flag, list, num, PERCENT, share, text } from './input-reader.ts';
import { curve, optionalNumber as N, pct, round2 } from './kit.ts';

// FinOps Foundation maturity ranges, in share of spend (0–1) → score.
const idleShare = curve([
  [0, 5],
  [0.05, 4],
  [0.1, 3],
  [0.2, 2],
  [0.35, 1],
  [0.5, 0],
]);
const allocatedShare = curve([
  [0.4, 0.5],
  [0.6, 2],
  [0.8, 3],
  [0.9, 4],
  [0.95, 5],
]);

const total = num(
  ['total_monthly_cost', 'total_cost', 'monthly_cost', 'total_spend', 'monthly_spend', 'total'],
  1e-9,
);

const IDLE = {
  total,
  idle: num(['idle_monthly_cost', 'idle_cost', 'idle_spend', 'idle']),
  under: num([
    'underutilized_monthly_cost',
    'underutilised_monthly_cost',
    'underutilized_cost',
    'underused_cost',
    'underutilized_spend',
    'underutilized',
  ]),
};

export const costIdleUnderutilized = defineMetric({
  id: 'cost.idle_underutilized',
  input: Type.Object({
    total_monthly_cost: N(),
    idle_monthly_cost: N('spend on resources idle (<5% use) for the window'),
    underutilized_monthly_cost: N('spend on resources below 20% use; counted at half weight'),
  }),
  fields: {
    total_monthly_cost: IDLE.total,
    idle_monthly_cost: IDLE.idle,
    underutilized_monthly_cost: IDLE.under,
  },
  keys: ['idle_monthly_cost'],
  assess(input, r) {
    const spend = r.get(input, IDLE.total);
    const idle = r.get(input, IDLE.idle);
    const under = r.opt(input, IDLE.under) ?? 0;
    if (spend === undefined || idle === undefined) return { score: undefined, rationale: '', evidence: {} };
    const waste = Math.min(1, (idle + 0.5 * under) / spend);
    return {
      score: idleShare(waste),
      rationale: `${pct(waste)} of monthly spend is idle or underused (idle counted fully, underused at half).`,
      evidence: { waste_share: round2(waste), idle_monthly_cost: idle, underutilized_monthly_cost: under },
    };
  },
});

const COMMIT = {
  eligible: num(
    [
      'eligible_monthly_spend',
      'eligible_spend',
      'on_demand_eligible_spend',
      'total_eligible_spend',
      'eligible',
    ],
    1e-9,
  ),
  committed: num([
    'committed_monthly_spend',
    'committed_spend',
    'covered_monthly_spend',
    'covered_spend',
    'committed',
  ]),
  coverage: share([
    'coverage',
    'commitment_coverage',
    'coverage_share',
    ['coverage_percent', PERCENT],
    ['commitment_coverage_percent', PERCENT],
  ]),
  utilization: share([
    'commitment_utilization',
    'utilization',
    'ri_utilization',
    'savings_plans_utilization',
    ['utilization_percent', PERCENT],
    ['commitment_utilization_percent', PERCENT],
  ]),
};

const coverageCurve = curve([
  [0, 0.5],
  [0.4, 2],
  [0.7, 4],
  [0.8, 5],
]);
// Unused commitments are money spent on nothing; below 95% use they pull the score down.
const utilisationCurve = curve([
  [0.6, 0],
  [0.8, 2],
  [0.9, 3.5],
  [0.95, 5],
]);

export const costCommitCoverage = defineMetric({
  id: 'cost.commit_coverage',
  input: Type.Object({
    eligible_monthly_spend: N('on-demand-eligible compute spend'),
    committed_monthly_spend: N('part covered by reservations / savings plans'),
    commitment_utilization: N('share of purchased commitments used, 0–1'),
  }),
  fields: {
    eligible_monthly_spend: COMMIT.eligible,
    committed_monthly_spend: COMMIT.committed,
    coverage: COMMIT.coverage,
    commitment_utilization: COMMIT.utilization,
  },
  keys: [['committed_monthly_spend', 'coverage']],
  assess(input, r) {
    // Cost Explorer exports the coverage share itself; spend figures are the documented form.
    const direct = r.opt(input, COMMIT.coverage);
    const need = direct === undefined ? 'get' : 'opt';
    const eligible = r[need](input, COMMIT.eligible);
    const committed = r[need](input, COMMIT.committed);
    const utilisation = r.opt(input, COMMIT.utilization);
    const coverage =
      eligible !== undefined && committed !== undefined ? Math.min(1, committed / eligible) : direct;
    if (coverage === undefined) return { score: undefined, rationale: '', evidence: {} };
    const coverageScore = coverageCurve(coverage);
    return {
      score:
        utilisation === undefined ? coverageScore : Math.min(coverageScore, utilisationCurve(utilisation)),
      rationale: `${pct(coverage)} of eligible spend under commitments${utilisation === undefined ? '' : `, ${pct(utilisation)} of commitments used`}.`,
      evidence: { coverage: round2(coverage), commitment_utilization: utilisation ?? null },
    };
  },
});

const ALLOC = {
  total,
  allocated: num([
    'allocated_monthly_cost',
    'allocated_cost',
    'allocated_spend',
    'attributed_cost',
    'allocated',
  ]),
  unallocated: num([
    'unallocated_monthly_cost',
    'unallocated_cost',
    'unattributed_cost',
    'untagged_cost',
    'unallocated',
  ]),
  share: share([
    'allocated_share',
    'allocation_rate',
    ['allocated_percent', PERCENT],
    ['allocation_percent', PERCENT],
  ]),
  split: flag(['shared_cost_split', 'shared_costs_split', 'shared_costs_allocated', 'split_shared_costs']),
};

export const costAllocationQuality = defineMetric({
  id: 'cost.allocation_quality',
  input: Type.Object({
    total_monthly_cost: N(),
    allocated_monthly_cost: N('spend attributed to an owner, team or cost centre'),
    shared_cost_split: Type.Optional(
      Type.Boolean({ description: 'shared costs are split by a documented rule' }),
    ),
  }),
  fields: {
    total_monthly_cost: ALLOC.total,
    allocated_monthly_cost: ALLOC.allocated,
    unallocated_monthly_cost: ALLOC.unallocated,
    allocated_share: ALLOC.share,
    shared_cost_split: ALLOC.split,
  },
  keys: [['allocated_monthly_cost', 'unallocated_monthly_cost', 'allocated_share']],
  assess(input, r) {
    const direct = r.opt(input, ALLOC.share);
    const spend = direct === undefined ? r.get(input, ALLOC.total) : r.opt(input, ALLOC.total);
    const allocated = r.opt(input, ALLOC.allocated);
    const unallocated = r.opt(input, ALLOC.unallocated);
    const share =
      spend !== undefined && allocated !== undefined
        ? Math.min(1, allocated / spend)
        : spend !== undefined && unallocated !== undefined
          ? Math.max(0, 1 - unallocated / spend)
          : direct;
    if (share === undefined) return { score: undefined, rationale: '', evidence: {} };
    const split = r.opt(input, ALLOC.split) === true;
    return {
      score: allocatedShare(share) - (split ? 0 : 0.5),
      rationale: `${pct(share)} of spend is allocated to an owner${split ? '; shared costs are split by rule' : '; shared costs are not split (−0.5)'}.`,
      evidence: { allocated_share: round2(share), shared_cost_split: split },
    };
  },
});

/** A tag map as `{name: value}`, or as AWS exports it: `[{Key, Value}]`. */
function parseTags(value: unknown) {
  const pairs = Array.isArray(value)
    ? value.map((t) => {
        const o = (t ?? {}) as Record<string, unknown>;
        return [o.Key ?? o.key, o.Value ?? o.value] as const;
      })
    : typeof value === 'object' && value !== null
      ? Object.entries(value)
      : undefined;
  if (!pairs || pairs.some(([k]) => typeof k !== 'string')) {
    return { ok: false as const, why: 'is not a tag map or a list of {Key, Value}' };
  }
  return {
    ok: true as const,
    value: Object.fromEntries(pairs.map(([k, v]) => [k, typeof v === 'number' ? String(v) : v])),
  };
}

const TAG = {
  required: list(['required_tags', 'mandatory_tags', 'required_tag_keys', 'tag_policy']),
  resources: list(['resources', 'assets', 'items']),
  id: text(['id', 'arn', 'resource_id', 'resource_arn', 'name']),
  tags: field<Record<string, unknown>>(['tags', 'labels', 'tag_set', 'resource_tags'], parseTags, {
    opaque: true,
  }),
};

export const taggingCoverage = defineMetric({
  id: 'tagging.coverage',
  input: Type.Object({
    required_tags: Type.Array(Type.String()),
    resources: Type.Array(
      Type.Object({ id: Type.String(), tags: Type.Record(Type.String(), Type.String()) }),
    ),
  }),
  fields: {
    required_tags: TAG.required,
    resources: TAG.resources,
    'resources[].id': TAG.id,
    'resources[].tags': TAG.tags,
  },
  keys: ['resources[].tags'],
  assess(input, r) {
    const required = r.get(input, TAG.required)?.filter((t): t is string => typeof t === 'string') ?? [];
    const resources = r.items(input, TAG.resources);
    let full = 0;
    let present = 0;
    const missing: Record<string, number> = {};
    for (const { value, at } of resources) {
      r.label(value, TAG.id, at);
      // Exports leave the tags key out of untagged resources, so absent means none.
      const tags = r.opt(value, TAG.tags, at) ?? {};
      let all = true;
      for (const tag of required) {
        const v = tags[tag];
        if (typeof v === 'string' && v.trim() !== '') present++;
        else {
          all = false;
          missing[tag] = (missing[tag] ?? 0) + 1;
        }
      }
      if (all) full++;
    }
    if (resources.length === 0 || required.length === 0) {
      if (resources.length === 0) r.gap('resources is empty.');
      if (required.length === 0) r.gap('required_tags is empty.');
      return { score: undefined, rationale: '', evidence: {} };
    }
    const fullShare = full / resources.length;
    const tagShare = present / (resources.length * required.length);
    // Fully tagged resources are what allocation can use; partial tags earn a quarter.
    const effective = 0.75 * fullShare + 0.25 * tagShare;
    return {
      score: allocatedShare(effective),
      rationale: `${pct(fullShare)} of ${resources.length} resources carry all ${required.length} required tags; ${pct(tagShare)} of required tag values are present.`,
      evidence: {
        fully_tagged_share: round2(fullShare),
        tag_value_share: round2(tagShare),
        missing_by_tag: missing,
      },
    };
  },
});
