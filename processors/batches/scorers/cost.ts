import { Type } from 'typebox';
import { curve, InputReader, type MetricScorer, optionalNumber as N, pct, result, round2 } from './kit.ts';

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

export const costIdleUnderutilized: MetricScorer = {
  id: 'cost.idle_underutilized',
  input: Type.Object({
    total_monthly_cost: N(),
    idle_monthly_cost: N('spend on resources idle (<5% use) for the window'),
    underutilized_monthly_cost: N('spend on resources below 20% use; counted at half weight'),
  }),
  score(input) {
    const r = new InputReader();
    const total = r.num(input, 'total_monthly_cost', 'total_monthly_cost', 1e-9);
    const idle = r.num(input, 'idle_monthly_cost', 'idle_monthly_cost', 0);
    const under = r.optNum(input, 'underutilized_monthly_cost', 'underutilized_monthly_cost', 0) ?? 0;
    if (total === undefined || idle === undefined) return result(this.id, r, undefined, '', {});
    const waste = Math.min(1, (idle + 0.5 * under) / total);
    return result(
      this.id,
      r,
      idleShare(waste),
      `${pct(waste)} of monthly spend is idle or underused (idle counted fully, underused at half).`,
      { waste_share: round2(waste), idle_monthly_cost: idle, underutilized_monthly_cost: under },
    );
  },
};

export const costCommitCoverage: MetricScorer = {
  id: 'cost.commit_coverage',
  input: Type.Object({
    eligible_monthly_spend: N('on-demand-eligible compute spend'),
    committed_monthly_spend: N('part covered by reservations / savings plans'),
    commitment_utilization: N('share of purchased commitments used, 0–1'),
  }),
  score(input) {
    const r = new InputReader();
    const eligible = r.num(input, 'eligible_monthly_spend', 'eligible_monthly_spend', 1e-9);
    const committed = r.num(input, 'committed_monthly_spend', 'committed_monthly_spend', 0);
    const utilisation = r.optNum(input, 'commitment_utilization', 'commitment_utilization', 0, 1);
    if (eligible === undefined || committed === undefined) return result(this.id, r, undefined, '', {});
    const coverage = Math.min(1, committed / eligible);
    const coverageScore = curve([
      [0, 0.5],
      [0.4, 2],
      [0.7, 4],
      [0.8, 5],
    ])(coverage);
    // Unused commitments are money spent on nothing; below 95% use they pull the score down.
    const utilisationScore =
      utilisation === undefined
        ? undefined
        : curve([
            [0.6, 0],
            [0.8, 2],
            [0.9, 3.5],
            [0.95, 5],
          ])(utilisation);
    const score = utilisationScore === undefined ? coverageScore : Math.min(coverageScore, utilisationScore);
    return result(
      this.id,
      r,
      score,
      `${pct(coverage)} of eligible spend under commitments${utilisation === undefined ? '' : `, ${pct(utilisation)} of commitments used`}.`,
      { coverage: round2(coverage), commitment_utilization: utilisation },
    );
  },
};

export const costAllocationQuality: MetricScorer = {
  id: 'cost.allocation_quality',
  input: Type.Object({
    total_monthly_cost: N(),
    allocated_monthly_cost: N('spend attributed to an owner, team or cost centre'),
    shared_cost_split: Type.Optional(
      Type.Boolean({ description: 'shared costs are split by a documented rule' }),
    ),
  }),
  score(input) {
    const r = new InputReader();
    const total = r.num(input, 'total_monthly_cost', 'total_monthly_cost', 1e-9);
    const allocated = r.num(input, 'allocated_monthly_cost', 'allocated_monthly_cost', 0);
    if (total === undefined || allocated === undefined) return result(this.id, r, undefined, '', {});
    const share = Math.min(1, allocated / total);
    const split = (input as { shared_cost_split?: unknown })?.shared_cost_split === true;
    return result(
      this.id,
      r,
      allocatedShare(share) - (split ? 0 : 0.5),
      `${pct(share)} of spend is allocated to an owner${split ? '; shared costs are split by rule' : '; shared costs are not split (−0.5)'}.`,
      { allocated_share: round2(share), shared_cost_split: split },
    );
  },
};

export const taggingCoverage: MetricScorer = {
  id: 'tagging.coverage',
  input: Type.Object({
    required_tags: Type.Array(Type.String()),
    resources: Type.Array(
      Type.Object({ id: Type.String(), tags: Type.Record(Type.String(), Type.String()) }),
    ),
  }),
  score(input) {
    const r = new InputReader();
    const required = r.items(input, 'required_tags').filter((t): t is string => typeof t === 'string');
    const resources = r.items(input, 'resources');
    if (resources.length === 0 || required.length === 0) {
      if (resources.length === 0) r.gap('resources is empty.');
      if (required.length === 0) r.gap('required_tags is empty.');
      return result(this.id, r, undefined, '', {});
    }
    let full = 0;
    let present = 0;
    const missing: Record<string, number> = {};
    for (const res of resources) {
      const tags = (res as { tags?: Record<string, unknown> })?.tags ?? {};
      let all = true;
      for (const tag of required) {
        const value = tags[tag];
        if (typeof value === 'string' && value.trim() !== '') present++;
        else {
          all = false;
          missing[tag] = (missing[tag] ?? 0) + 1;
        }
      }
      if (all) full++;
    }
    const fullShare = full / resources.length;
    const tagShare = present / (resources.length * required.length);
    // Fully tagged resources are what allocation can use; partial tags earn a quarter.
    const effective = 0.75 * fullShare + 0.25 * tagShare;
    return result(
      this.id,
      r,
      allocatedShare(effective),
      `${pct(fullShare)} of ${resources.length} resources carry all ${required.length} required tags; ${pct(tagShare)} of required tag values are present.`,
      { fully_tagged_share: round2(fullShare), tag_value_share: round2(tagShare), missing_by_tag: missing },
    );
  },
};
