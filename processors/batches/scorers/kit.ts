import { type TSchema, Type } from 'typebox';

/** What every metric scorer returns; the shape of result.json's `metrics.<id>`. */
export interface MetricResult {
  metric_id: string;
  /** 0–5, one decimal. */
  score: number;
  /** 0–1: how much of the input the score could rest on. */
  confidence: number;
  rationale: string;
  evidence: Record<string, unknown>;
  /** Missing or malformed input, one sentence each. */
  gaps: string[];
}

export interface MetricScorer {
  id: string;
  /** TypeBox schema of the file's expected shape, documented in docs/metrics.md. */
  input: TSchema;
  score(input: unknown): MetricResult;
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

type Kind = 'number' | 'boolean' | 'string' | 'array' | 'object';

/**
 * Reads fields of an untrusted JSON file. A missing or wrongly-typed field is recorded as a
 * gap and answered with undefined, so a scorer carries on with what it has and the gaps
 * lower its confidence instead of crashing the batch.
 */
export class InputReader {
  readonly gaps: string[] = [];
  /** Fields asked for, and how many were usable: the basis of confidence. */
  asked = 0;
  found = 0;

  get<T = unknown>(from: unknown, path: string, kind: Kind, label = path): T | undefined {
    this.asked++;
    let value: unknown = from;
    for (const key of path.split('.')) {
      value =
        value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
    }
    if (value === undefined || value === null) {
      this.gaps.push(`${label} is missing.`);
      return undefined;
    }
    const ok =
      kind === 'array'
        ? Array.isArray(value)
        : kind === 'object'
          ? typeof value === 'object' && !Array.isArray(value)
          : kind === 'number'
            ? typeof value === 'number' && Number.isFinite(value)
            : typeof value === kind;
    if (!ok) {
      this.gaps.push(`${label} is not a${kind === 'array' || kind === 'object' ? 'n' : ''} ${kind}.`);
      return undefined;
    }
    this.found++;
    return value as T;
  }

  /** A number that must also lie within [lo, hi] (a rate, a percentage). */
  num(from: unknown, path: string, label = path, lo = 0, hi = Number.POSITIVE_INFINITY): number | undefined {
    const value = this.get<number>(from, path, 'number', label);
    if (value === undefined) return undefined;
    if (value < lo || value > hi) {
      this.found--;
      this.gaps.push(`${label} (${value}) is outside ${lo}–${hi === Number.POSITIVE_INFINITY ? '∞' : hi}.`);
      return undefined;
    }
    return value;
  }

  /** An optional number: absent is fine (no gap), present but wrong is a gap. */
  optNum(
    from: unknown,
    path: string,
    label = path,
    lo = 0,
    hi = Number.POSITIVE_INFINITY,
  ): number | undefined {
    let value: unknown = from;
    for (const key of path.split('.')) {
      value =
        value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
    }
    return value === undefined || value === null ? undefined : this.num(from, path, label, lo, hi);
  }

  items(from: unknown, path: string): unknown[] {
    return this.get<unknown[]>(from, path, 'array') ?? [];
  }

  gap(sentence: string): void {
    this.gaps.push(sentence);
  }
}

/**
 * Builds the result: score clamped to 0–5 with one decimal; confidence is the share of the
 * fields asked for that were usable, scaled by a metric's own base confidence (how well
 * the input can show the property at all) and never below 0.1 while anything scored.
 */
export function result(
  id: string,
  reader: InputReader,
  score: number | undefined,
  rationale: string,
  evidence: Record<string, unknown>,
  baseConfidence = 0.9,
): MetricResult {
  if (score === undefined || Number.isNaN(score)) {
    return {
      metric_id: id,
      score: 0,
      confidence: 0,
      rationale: `Not scored: ${reader.gaps[0] ?? 'the input had nothing to score.'}`,
      evidence,
      gaps: reader.gaps.length ? reader.gaps : ['The input had nothing to score.'],
    };
  }
  const coverage = reader.asked === 0 ? 1 : reader.found / reader.asked;
  return {
    metric_id: id,
    score: round1(clamp(score, 0, 5)),
    confidence: round2(clamp(baseConfidence * coverage, 0.1, 1)),
    rationale,
    evidence,
    gaps: reader.gaps,
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
