import { type Static, Type } from 'typebox';
import { FUNCTION_NAME_PATTERN } from './functions.ts';

const options = {
  memorySizes: Type.Optional(
    Type.Array(Type.Integer({ minimum: 64, maximum: 10240 }), {
      minItems: 1,
      maxItems: 12,
      description: 'Default 128, 256, 512, 1024, 1769.',
    }),
  ),
  invocations: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 50,
      description: 'Measured runs per size, after one discarded warm-up call. Default 10.',
    }),
  ),
  event: Type.Optional(Type.Unknown()),
  strategy: Type.Optional(
    Type.Union([Type.Literal('cost'), Type.Literal('speed'), Type.Literal('balanced')], {
      description: 'Default balanced.',
    }),
  ),
};

/** What a caller may ask of a power-tuning sweep (the body of POST …/tuning/sweep). */
export const SweepOptions = Type.Object(options, { additionalProperties: false });

/** One sweep on the `sweeps` queue: the function, the version current when asked, the options. */
export const SweepPayload = Type.Object(
  {
    functionName: Type.String({ pattern: FUNCTION_NAME_PATTERN }),
    version: Type.Optional(Type.String({ description: 'The version current when the sweep was asked.' })),
    ...options,
  },
  { additionalProperties: false },
);
export type SweepPayload = Static<typeof SweepPayload>;

export const SweepPoint = Type.Object({
  memoryMb: Type.Integer(),
  durationMs: Type.Number({
    description: 'Trimmed mean of the measured runs (20% cut each side from 5 runs).',
  }),
  p10Ms: Type.Number(),
  p50Ms: Type.Number(),
  p90Ms: Type.Number(),
  costUsd: Type.Number({ description: 'Mean billed cost of one invocation: each run rounded up to the ms.' }),
  costPerMillionUsd: Type.Number(),
  runs: Type.Integer(),
  failures: Type.Integer(),
});

/** What the `sweeps` queue's processor returns, and GET …/tuning/sweeps/:id shows when done. */
export const SweepResult = Type.Object({
  functionName: Type.String(),
  strategy: Type.Union([Type.Literal('cost'), Type.Literal('speed'), Type.Literal('balanced')]),
  best: Type.Union([SweepPoint, Type.Null()]),
  reason: Type.String({ description: 'Why this size was picked, or why none was.' }),
  points: Type.Array(SweepPoint),
  at: Type.String(),
});
export type SweepResult = Static<typeof SweepResult>;
