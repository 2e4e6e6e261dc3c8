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
    description: 'Absolute path of the batch folder: its id in processed.json and on the queue.',
  }),
  files: Type.Array(Type.String()),
  folderState: Type.String({ description: 'pending | processed | locked | no input files' }),
  jobId: Type.Optional(Type.String()),
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
        score: Type.Number({ minimum: 0, maximum: 5 }),
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
