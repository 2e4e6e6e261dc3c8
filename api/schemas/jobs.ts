import { Type } from 'typebox';
import { JOB_ID_DESCRIPTION, JOB_ID_PATTERN } from '../../queues/job-ids.ts';
import { HttpJobResult } from '../../queues/schemas/http-jobs.ts';

export const JobStatus = Type.Union(
  [Type.Literal('queued'), Type.Literal('running'), Type.Literal('succeeded'), Type.Literal('failed')],
  { description: 'queued covers waiting, delayed and waiting for a retry.' },
);

export const JobAccepted = Type.Object({ id: Type.String(), status: JobStatus });

export const JobView = Type.Object({
  id: Type.String(),
  status: JobStatus,
  progress: Type.Number({ description: 'Percent done, 0-100.' }),
  attempts: Type.Integer({ description: 'Attempts made so far.' }),
  createdAt: Type.String({ format: 'date-time' }),
  finishedAt: Type.Optional(Type.String({ format: 'date-time' })),
  result: Type.Optional(HttpJobResult),
  error: Type.Optional(Type.String()),
});

/** Checked before BullMQ sees it: `meta`, `id` or `events` would read the queue's own keys. */
export const JobId = Type.String({ pattern: JOB_ID_PATTERN, description: JOB_ID_DESCRIPTION });

export const JobParams = Type.Object({ id: JobId });
