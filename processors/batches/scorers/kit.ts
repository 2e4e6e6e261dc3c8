import { Type } from 'typebox';

/** What every metric scorer returns; the shape of result.json's `metrics.<id>`. */
export interface MetricResult {
  metric_id: string;
  /** 0–5, one decimal; null when the input gave nothing to score on. */
  score: number | null;
  /** 0–1: how much of the input the score could rest on; 0 when not scored. */
  confidence: number;
  rationale: string;
  evidence: Record<string, unknown>;
  /** Missing or malformed input, one sentence each. */
  gaps: string[];
}

/** An optional numeric input field, with what it means, for a scorer's input schema. */
export const optionalNumber = (description?: string) =>
  Type.Optional(Type.Number(description ? { description } : {}));

export const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));
export const round1 = (x: number) => Math.round(x * 10) / 10;
export const round2 = (x: number) => Math.round(x * 100) / 100;
export const pct = (x: number) => `${round1(x * 100)}%`;

/**
 * Piecewise-linear curve through [x, score] points sorted by x. Scorers build their rubric
 * from these, so a rubric reads as its thresholds, and a monotone list of points gives a
 * monotone score.
 */
export function curve(points: ReadonlyArray<readonly [number, number]>) {
  return (x: number): number => {
    const first = points[0] as readonly [number, number];
    const last = points[points.length - 1] as readonly [number, number];
    if (x <= first[0]) return first[1];
    if (x >= last[0]) return last[1];
    for (let i = 1; i < points.length; i++) {
      const [x1, y1] = points[i] as readonly [number, number];
      const [x0, y0] = points[i - 1] as readonly [number, number];
      if (x <= x1) return y0 + ((y1 - y0) * (x - x0)) / (x1 - x0);
    }
    return last[1];
  };
}

/** Mean of defined numbers, weighted; undefined when nothing to average. */
export function weightedMean(
  pairs: ReadonlyArray<readonly [number | undefined, number]>,
): number | undefined {
  let sum = 0;
  let weight = 0;
  for (const [value, w] of pairs) {
    if (value === undefined || !Number.isFinite(value) || w <= 0) continue;
    sum += value * w;
    weight += w;
  }
  return weight === 0 ? undefined : sum / weight;
}
