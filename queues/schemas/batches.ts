import { type Static, Type } from 'typebox';

/** A batch folder name: one path segment, nothing that could climb out of Inputs/. */
export const BATCH_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$';

export const BatchJobPayload = Type.Object(
  {
    name: Type.String({ pattern: BATCH_NAME_PATTERN, description: 'A batch folder name under Inputs/.' }),
  },
  { additionalProperties: false },
);
export type BatchJobPayload = Static<typeof BatchJobPayload>;

/** What the `batches` queue's processor returns. */
export const BatchOutcome = Type.Object({
  batch: Type.String(),
  path: Type.String(),
  resultPath: Type.Optional(Type.String()),
  skipped: Type.Optional(Type.Literal('already processed')),
  scored_metrics: Type.Optional(Type.Integer()),
  overall_score: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
});
export type BatchOutcome = Static<typeof BatchOutcome>;
