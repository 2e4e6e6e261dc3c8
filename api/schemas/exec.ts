import { Type } from 'typebox';
import { JobId } from './jobs.ts';

export const ExecParams = Type.Object({ execution_id: JobId });

export const ExecQuery = Type.Object({
  wait: Type.Optional(
    Type.Boolean({
      description:
        'Answer with the response once the execution ends (up to its timeout plus 30 s); else 202 at once.',
    }),
  ),
});

export const ExecPending = Type.Object({
  execution_id: Type.String(),
  correlation_id: Type.String(),
  status: Type.Union([Type.Literal('queued'), Type.Literal('running'), Type.Literal('cancelling')]),
  location: Type.String({ description: 'Where the response will be: GET /exec/<execution_id>.' }),
});
