import { CATEGORY_WEIGHTS, type Category, METRICS } from './catalog.ts';
import { type MetricResult, round1 } from './scorers/kit.ts';

export interface BatchResult {
  metrics: Record<string, MetricResult>;
  summary: {
    overall_score: number | null;
    category_scores: Partial<Record<Category, number>>;
    breakdown: Array<{
      category: Category;
      weight: number;
      score: number;
      metrics: Array<{ metric_id: string; weight: number; score: number }>;
    }>;
    scored_metrics: number;
  };
}

/** A file's parsed JSON, or the reason it could not be read (a gap of that metric, not a crash). */
export type MetricInput = { ok: true; value: unknown } | { ok: false; error: string };

/**
 * Scores the metrics whose files are present (strict single flow: nothing else runs) and
 * summarises them. Pure: the same inputs give the same result.json.
 */
export function scoreBatch(inputs: Record<string, MetricInput>): BatchResult {
  const metrics: Record<string, MetricResult> = {};
  for (const [id, input] of Object.entries(inputs)) {
    const entry = METRICS[id];
    if (!entry) continue;
    if (!input.ok) {
      metrics[id] = {
        metric_id: id,
        score: null,
        confidence: 0,
        rationale: `Not scored: ${entry.file} could not be read.`,
        evidence: {},
        gaps: [`${entry.file}: ${input.error}`],
      };
      continue;
    }
    try {
      metrics[id] = entry.scorer.score(input.value);
    } catch (err) {
      // A scorer bug must cost one metric, never the batch.
      metrics[id] = {
        metric_id: id,
        score: null,
        confidence: 0,
        rationale: 'Not scored: the scorer failed on this input.',
        evidence: {},
        gaps: [`scorer error: ${(err as Error).message}`],
      };
    }
  }
  return { metrics, summary: summarise(metrics) };
}

/** Weighted means over the metrics that scored; unscored ones (score null) neither drag nor lift the mean. */
export function summarise(metrics: Record<string, MetricResult>): BatchResult['summary'] {
  const byCategory = new Map<Category, Array<{ metric_id: string; weight: number; score: number }>>();
  for (const [id, m] of Object.entries(metrics)) {
    const entry = METRICS[id];
    if (!entry || m.score === null) continue;
    const list = byCategory.get(entry.category) ?? [];
    list.push({ metric_id: id, weight: entry.weight, score: m.score });
    byCategory.set(entry.category, list);
  }
  const breakdown: BatchResult['summary']['breakdown'] = [];
  const category_scores: Partial<Record<Category, number>> = {};
  let overall = 0;
  let overallWeight = 0;
  for (const [category, list] of byCategory) {
    const weight = list.reduce((a, m) => a + m.weight, 0);
    const score = list.reduce((a, m) => a + m.score * m.weight, 0) / weight;
    category_scores[category] = round1(score);
    breakdown.push({ category, weight: CATEGORY_WEIGHTS[category], score: round1(score), metrics: list });
    overall += score * CATEGORY_WEIGHTS[category];
    overallWeight += CATEGORY_WEIGHTS[category];
  }
  const scored = [...byCategory.values()].reduce((a, l) => a + l.length, 0);
  return {
    overall_score: overallWeight ? round1(overall / overallWeight) : null,
    category_scores,
    breakdown,
    scored_metrics: scored,
  };
}
