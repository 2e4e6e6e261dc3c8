import { Type } from 'typebox';
import { BATCH_NAME_PATTERN } from '../../queues/schemas/batches.ts';

export const BatchStatus = Type.Union([
  Type.Literal('pending'),
  Type.Literal('processing'),
  Type.Literal('done'),
  Type.Literal('failed'),
]);

export const CreateBatchBody = Type.Object(
  {
    name: Type.String({
      pattern: BATCH_NAME_PATTERN,
      description: 'A new folder name under Inputs/: letters, digits, . _ -.',
    }),
    files: Type.Record(Type.String(), Type.Unknown(), {
      description: 'File name (e.g. lb_performance.json) → its JSON content.',
      minProperties: 1,
      maxProperties: 64,
    }),
  },
  { additionalProperties: false },
);

export const BatchView = Type.Object({
  name: Type.String(),
  status: BatchStatus,
  path: Type.String({
    description: 'The batch folder, under the inputs root (Inputs/<name>); host paths are never shown.',
  }),
  files: Type.Array(Type.String()),
  folderState: Type.String({ description: 'pending | processed | locked | no input files' }),
  error: Type.Optional(Type.String()),
});

export const BatchList = Type.Object({ batches: Type.Array(BatchView) });
export const BatchParams = Type.Object({ name: Type.String({ pattern: BATCH_NAME_PATTERN }) });
export { TickSummary as TickResult } from '../../queues/schemas/scheduler.ts';
export const BatchResultSchema = Type.Object(
  {
    metrics: Type.Record(
      Type.String(),
      Type.Object({
        metric_id: Type.String(),
        score: Type.Union([Type.Number({ minimum: 0, maximum: 5 }), Type.Null()], {
          description: 'null: not scored (nothing usable in the file); the gaps say what it needed.',
        }),
        confidence: Type.Number({ minimum: 0, maximum: 1 }),
        rationale: Type.String(),
        evidence: Type.Record(Type.String(), Type.Unknown()),
        gaps: Type.Array(Type.String()),
      }),
    ),
    summary: Type.Object({
      overall_score: Type.Union([Type.Number(), Type.Null()]),
      category_scores: Type.Record(Type.String(), Type.Number()),
      breakdown: Type.Array(Type.Unknown()),
      scored_metrics: Type.Integer(),
    }),
  },
  { additionalProperties: true },
);

export const MetricInputReport = Type.Object({
  metric_id: Type.String(),
  file: Type.String(),
  would_score: Type.Boolean({
    description: 'At least one key field was understood and the rubric had what it needs.',
  }),
  understood: Type.Array(
    Type.Object({
      field: Type.String({ description: 'Path in documented names; [] stands for any item.' }),
      as: Type.Array(Type.String(), { description: 'The names it was found under in the file.' }),
    }),
  ),
  missing: Type.Array(
    Type.Object({
      field: Type.String({
        description: 'A key field not found (alternatives to one found are not listed).',
      }),
      accepts: Type.Array(Type.String(), { description: 'The names it is read under.' }),
    }),
  ),
  ignored: Type.Array(Type.String(), {
    description: 'Paths in the file, as spelled there, that the scorer did not use.',
  }),
  gaps: Type.Array(Type.String(), { description: 'Missing or malformed fields, one sentence each.' }),
});

export const BatchValidation = Type.Object({
  name: Type.String(),
  metrics: Type.Record(Type.String(), MetricInputReport, {
    description: 'Per metric whose file is present, keyed by metric id.',
  }),
  ignored_files: Type.Array(Type.String(), {
    description: 'Files that map to no metric; the runner skips them.',
  }),
});
