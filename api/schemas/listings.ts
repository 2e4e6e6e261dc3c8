import { Type } from 'typebox';

/*
 * Read-only listings the console needed and the API lacked: queue depths, recent invocations,
 * recent executions. Each is a summary; the full record stays at its own route.
 */

export const QueueCounts = Type.Object({
  name: Type.String(),
  waiting: Type.Integer({ description: 'Waiting, prioritized and waiting for children.' }),
  active: Type.Integer(),
  delayed: Type.Integer({ description: 'Delayed, including retries waiting for their backoff.' }),
  failed: Type.Integer({ description: 'Failed jobs still kept (7 days).' }),
  completed: Type.Integer({ description: 'Completed jobs still kept (a day, at most 10,000).' }),
  paused: Type.Boolean(),
});

export const QueueList = Type.Object({ queues: Type.Array(QueueCounts), at: Type.String() });

export const ListLimit = Type.Integer({
  minimum: 1,
  maximum: 200,
  default: 50,
  description: 'At most this many, newest first. Default 50.',
});

export const InvocationListQuery = Type.Object(
  {
    function: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$' })),
    status: Type.Optional(
      Type.Union(
        [
          Type.Literal('PENDING'),
          Type.Literal('RUNNING'),
          Type.Literal('SUCCESS'),
          Type.Literal('FAILED'),
          Type.Literal('TIMEOUT'),
          Type.Literal('CANCELLED'),
        ],
        { description: 'Only invocations in this state.' },
      ),
    ),
    limit: Type.Optional(ListLimit),
  },
  { additionalProperties: false },
);

export const InvocationSummary = Type.Object({
  requestId: Type.String(),
  functionName: Type.String(),
  status: Type.Union([
    Type.Literal('PENDING'),
    Type.Literal('RUNNING'),
    Type.Literal('SUCCESS'),
    Type.Literal('FAILED'),
    Type.Literal('TIMEOUT'),
    Type.Literal('CANCELLED'),
  ]),
  source: Type.Optional(Type.String()),
  durationMs: Type.Optional(Type.Number()),
  coldStart: Type.Optional(Type.Boolean()),
  memoryUsedMb: Type.Optional(Type.Number()),
  error: Type.Optional(Type.String({ description: 'One sentence, when it failed.' })),
  createdAt: Type.String({ format: 'date-time' }),
  finishedAt: Type.Optional(Type.String({ format: 'date-time' })),
});

export const InvocationList = Type.Object({ invocations: Type.Array(InvocationSummary) });

export const ExecListQuery = Type.Object(
  { limit: Type.Optional(ListLimit) },
  { additionalProperties: false },
);

export const ExecSummary = Type.Object({
  execution_id: Type.String(),
  correlation_id: Type.String(),
  status: Type.Union([
    Type.Literal('queued'),
    Type.Literal('running'),
    Type.Literal('cancelling'),
    Type.Literal('succeeded'),
    Type.Literal('failed'),
    Type.Literal('timeout'),
    Type.Literal('cancelled'),
  ]),
  image: Type.Optional(Type.String()),
  duration: Type.Optional(Type.String({ description: 'e.g. "5.2s", once it ended.' })),
  exit_code: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
  output_files: Type.Optional(Type.Integer({ description: 'How many output files it returned.' })),
  error: Type.Optional(Type.String()),
  createdAt: Type.String({ format: 'date-time' }),
  finishedAt: Type.Optional(Type.String({ format: 'date-time' })),
});

export const ExecList = Type.Object({ executions: Type.Array(ExecSummary) });
