import { Type } from 'typebox';
import { FUNCTION_NAME_PATTERN } from '../../queues/schemas/functions.ts';
import { SweepResult } from '../../queues/schemas/sweeps.ts';
import { RUNTIME_NAMES } from '../../runtimes/catalog.ts';
import { JobId } from './jobs.ts';

export const FunctionParams = Type.Object({
  name: Type.String({ pattern: FUNCTION_NAME_PATTERN, description: 'Letters, digits, - and _, up to 64.' }),
});

const Code = Type.Union(
  [
    Type.Object(
      { zipBase64: Type.String({ minLength: 4, description: 'A zip archive, base64.' }) },
      { additionalProperties: false },
    ),
    Type.Object(
      { files: Type.Record(Type.String(), Type.String(), { description: 'Relative path → UTF-8 source.' }) },
      { additionalProperties: false },
    ),
    Type.Object(
      {
        s3: Type.Object(
          { bucket: Type.String({ minLength: 1 }), key: Type.String({ minLength: 1 }) },
          { additionalProperties: false },
        ),
      },
      { additionalProperties: false },
    ),
  ],
  { description: 'One of zipBase64, files or s3 (a zip in a bucket).' },
);

export const DeployBody = Type.Object(
  {
    runtime: Type.Union(RUNTIME_NAMES.map((name) => Type.Literal(name))),
    handler: Type.String({
      pattern: '^[A-Za-z0-9_./-]+\\.[A-Za-z_$][A-Za-z0-9_$]*$',
      description: 'file.export, e.g. index.handler (node) or app.handler (python).',
    }),
    memoryMb: Type.Integer({
      minimum: 64,
      maximum: 10240,
      description: 'Memory limit; CPU follows it (1,769 MB = 1 vCPU).',
    }),
    timeoutMs: Type.Integer({ minimum: 1, maximum: 900000, description: 'Wall-clock limit per invocation.' }),
    env: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.String())),
    network: Type.Optional(
      Type.Union([Type.Literal('none'), Type.Literal('egress')], { description: 'Default none.' }),
    ),
    concurrency: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 1000, description: 'Invocations at once. Default 10.' }),
    ),
    code: Code,
  },
  { additionalProperties: false },
);

export const FunctionView = Type.Object({
  name: Type.String(),
  runtime: Type.String(),
  handler: Type.String(),
  memoryMb: Type.Integer(),
  timeoutMs: Type.Integer(),
  env: Type.Record(Type.String(), Type.String()),
  network: Type.String(),
  concurrency: Type.Integer(),
  version: Type.String(),
  codeSha256: Type.String(),
  codeSize: Type.Integer(),
  codeLocation: Type.String(),
  lastModified: Type.String(),
});

export { InvocationResult as InvocationResultSchema } from '../../queues/schemas/functions.ts';

export const InvocationPending = Type.Object({
  requestId: Type.String(),
  status: Type.Union([Type.Literal('PENDING'), Type.Literal('RUNNING')]),
});

export const RequestParams = Type.Object({ requestId: JobId });

export const TuningView = Type.Object({
  functionName: Type.String(),
  samples: Type.Integer(),
  successful: Type.Integer(),
  memoryLimitMb: Type.Integer(),
  p95PeakMb: Type.Number(),
  p50DurationMs: Type.Number(),
  p95DurationMs: Type.Number(),
  p50CpuPercent: Type.Number(),
  observedPerHour: Type.Union([Type.Number(), Type.Null()]),
  monthlyInvocations: Type.Number(),
  advice: Type.Union([Type.Null(), Type.Unknown()]),
});

export { SweepOptions as SweepBody } from '../../queues/schemas/sweeps.ts';

export const SweepParams = Type.Object({
  name: Type.String({ pattern: FUNCTION_NAME_PATTERN }),
  sweepId: Type.String({ format: 'uuid', description: 'The id POST …/tuning/sweep answered.' }),
});

export const SweepStatus = Type.Object({
  sweepId: Type.String(),
  functionName: Type.String(),
  status: Type.Union([
    Type.Literal('queued'),
    Type.Literal('running'),
    Type.Literal('done'),
    Type.Literal('failed'),
  ]),
  progress: Type.Integer({ minimum: 0, maximum: 100, description: 'Percent of the sweep’s calls made.' }),
  location: Type.String({ description: 'Where to follow this sweep.' }),
  result: Type.Optional(SweepResult),
  error: Type.Optional(Type.String()),
});
