import { type Static, Type } from 'typebox';
import { REPLY_TO_PATTERN } from '../reply-path.ts';

export const FUNCTION_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$';

/** One invocation on the `functions` queue; its job id is the requestId. */
export const InvocationPayload = Type.Object(
  {
    functionName: Type.String({ pattern: FUNCTION_NAME_PATTERN }),
    version: Type.Optional(Type.String({ description: 'The version current when the call was made.' })),
    requestId: Type.Optional(
      Type.String({ minLength: 1, maxLength: 128, description: 'Default: the job id.' }),
    ),
    event: Type.Optional(Type.Unknown()),
    invocationType: Type.Optional(
      Type.Union([Type.Literal('RequestResponse'), Type.Literal('Event')], { description: 'Default Event.' }),
    ),
    source: Type.Optional(Type.String({ description: 'http, sqs, cli, sweep' })),
    replyTo: Type.Optional(
      Type.String({
        pattern: REPLY_TO_PATTERN,
        description: 'The waiting gateway: the worker also publishes the result on its reply channel.',
      }),
    ),
    destinationDepth: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1000,
        description:
          'Set on a call made by a destination: how many destination hops led to it (loops stop at 16).',
      }),
    ),
    memoryMb: Type.Optional(
      Type.Integer({
        minimum: 64,
        maximum: 10240,
        description: 'Run at this memory size instead (tuning sweeps).',
      }),
    ),
  },
  { additionalProperties: false },
);
export type InvocationPayload = Static<typeof InvocationPayload>;

const Resources = Type.Object({
  memoryUsedMb: Type.Number(),
  cpuUsagePercent: Type.Number(),
  networkRxBytes: Type.Number(),
  networkTxBytes: Type.Number(),
});

export const InvocationError = Type.Object({
  errorType: Type.String(),
  errorMessage: Type.String(),
  stack: Type.Optional(Type.String()),
  stackTrace: Type.Optional(
    Type.Array(Type.String(), { description: "Lambda's form of the stack: one string per line or frame." }),
  ),
});

/** What the `functions` queue's processor returns: the contract's result shape, plus functionName. */
export const InvocationResult = Type.Object({
  requestId: Type.String(),
  functionName: Type.String(),
  status: Type.Union([
    Type.Literal('SUCCESS'),
    Type.Literal('FAILED'),
    Type.Literal('TIMEOUT'),
    Type.Literal('CANCELLED'),
  ]),
  durationMs: Type.Number(),
  result: Type.Unknown(),
  error: Type.Optional(InvocationError),
  logs: Type.Optional(Type.String()),
  logsTruncated: Type.Optional(Type.Boolean()),
  resources: Resources,
  autoTuner: Type.Object({
    recommendation: Type.String(),
    recommendationMb: Type.Integer(),
    savings: Type.Number({ description: 'Percent of the memory bill.' }),
    monthlySavingsUsd: Type.Number(),
    pattern: Type.String(),
    tip: Type.String(),
  }),
  coldStart: Type.Boolean(),
});
export type InvocationResult = Static<typeof InvocationResult>;
