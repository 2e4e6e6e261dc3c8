import type { TSchema } from 'typebox';
import { coerceError } from '../../../core/errors.ts';
import { type Field, InputReader } from './input-reader.ts';
import { clamp, type MetricResult, round1, round2 } from './kit.ts';

export interface Assessment {
  /** undefined: nothing to score on; the reader's gaps say why. */
  score: number | undefined;
  rationale: string;
  evidence: Record<string, unknown>;
}

export interface MetricSpec<P extends string> {
  id: string;
  /** TypeBox schema of the file's documented shape (docs/metrics.md). */
  input: TSchema;
  /** Every field the scorer reads, by path in documented names (`[]` = any item): the alias table. */
  fields: Record<P, Field<unknown>>;
  /**
   * Where the metric's signal lives: a path, or a list of paths any one of which will do. With
   * none of them understood, the metric is not scored.
   */
  keys: ReadonlyArray<NoInfer<P> | readonly NoInfer<P>[]>;
  /** How well the input can show the property at all; default 0.9. */
  confidence?: number;
  assess(input: unknown, r: InputReader): Assessment;
}

export interface MetricScorer {
  id: string;
  input: TSchema;
  fields: Readonly<Record<string, Field<unknown>>>;
  keys: ReadonlyArray<string | readonly string[]>;
  /** Scores an untrusted file; never throws on bad input. */
  score(input: unknown): MetricResult;
  /** What scoring `input` would read, without a score: for POST /batches/validate. Pure. */
  inspect(input: unknown): InputReport;
}

/** Per metric: what its fields meant to the scorer. */
export interface InputReport {
  would_score: boolean;
  /** Field path (documented names) and the names it was found under. */
  understood: Array<{ field: string; as: string[] }>;
  /** Key fields not found (alternatives to one that was found are not listed), with their names. */
  missing: Array<{ field: string; accepts: string[] }>;
  /** Paths in the input (as spelled there) that the scorer never read. */
  ignored: string[];
  gaps: string[];
}

/**
 * Builds a scorer around a rubric. The rule that no metric is scored on evidence it could not
 * read lives here, once: whatever the rubric computed, a file in which none of the key fields
 * was understood gets `score: null`, with gaps naming the fields and the names they go by.
 */
export function defineMetric<P extends string>(spec: MetricSpec<P>): MetricScorer {
  const groups = spec.keys.map((k): readonly P[] => (typeof k === 'string' ? [k] : k));
  const names = (path: P) => spec.fields[path].names.map((a) => a.name);

  const run = (input: unknown) => {
    const r = new InputReader();
    const assessment = spec.assess(input, r);
    const unmet = groups.filter((g) => !g.some((k) => r.knows(k))).flat();
    const keyed = unmet.length < groups.flat().length;
    if (!keyed) {
      // One sentence per key field, with its names, instead of one per item that lacked it.
      for (const k of unmet) r.dropMissing(k);
      for (const k of unmet) r.gap(`${k} was not found (accepted names: ${names(k).join(', ')}).`);
    }
    const { score } = assessment;
    return {
      r,
      assessment,
      keyed,
      unmet,
      score: keyed && score !== undefined && !Number.isNaN(score) ? score : undefined,
    };
  };

  return {
    id: spec.id,
    input: spec.input,
    fields: spec.fields,
    keys: spec.keys,
    score(input) {
      const { r, assessment, keyed, score } = run(input);
      if (score === undefined) {
        return {
          metric_id: spec.id,
          score: null,
          confidence: 0,
          rationale: keyed
            ? `Not scored: ${r.gaps[0] ?? 'the input had nothing to score.'}`
            : `Not scored: none of ${groups.flat().join(', ')} was found.`,
          evidence: keyed ? assessment.evidence : {},
          gaps: r.gaps.length ? r.gaps : ['The input had nothing to score.'],
        };
      }
      const coverage = r.asked === 0 ? 1 : r.found / r.asked;
      return {
        metric_id: spec.id,
        score: round1(clamp(score, 0, 5)),
        confidence: round2(clamp((spec.confidence ?? 0.9) * coverage, 0.1, 1)),
        rationale: assessment.rationale,
        evidence: assessment.evidence,
        gaps: r.gaps,
      };
    },
    inspect(input) {
      let outcome: ReturnType<typeof run>;
      try {
        outcome = run(input);
      } catch (err) {
        const gaps = [`scorer error: ${coerceError(err).message}`];
        return { would_score: false, understood: [], missing: [], ignored: [], gaps };
      }
      const { r, unmet, score } = outcome;
      return {
        would_score: score !== undefined,
        understood: [...r.understood]
          .map(([field, as]) => ({ field, as: [...as].sort() }))
          .sort((a, b) => a.field.localeCompare(b.field)),
        missing: unmet.map((k) => ({ field: k, accepts: names(k) })),
        ignored: r.ignored(input),
        gaps: r.gaps,
      };
    },
  };
}
