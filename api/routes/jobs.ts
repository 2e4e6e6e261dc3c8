import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Job, JobState } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Static } from 'typebox';
import { NotFoundError } from '../../core/errors.ts';
import type { Enqueue } from '../../queues/enqueue.ts';
import { failureSentence } from '../../queues/job-read.ts';
import type { QueueSet } from '../../queues/queue-set.ts';
import { HttpJobPayload } from '../../queues/schemas/http-jobs.ts';
import { commonErrors, ErrorResponse } from '../schemas/common.ts';
import { JobAccepted, JobParams, type JobStatus, JobView } from '../schemas/jobs.ts';

// Where the routes have always found them.
export { failureSentence, NO_FAILURE_REASON } from '../../queues/job-read.ts';

type Status = Static<typeof JobStatus>;

/** BullMQ has nine states; users of the seed's worker know four. */
export function toStatus(state: JobState | 'unknown'): Status {
  switch (state) {
    case 'active':
      return 'running';
    case 'completed':
      return 'succeeded';
    case 'failed':
      return 'failed';
    default:
      return 'queued';
  }
}

/**
 * `state` must be read before `job`: a finished job stays finished, so a job read after a
 * `completed` state carries its result. Read the other way round, a job finishing in between
 * showed `succeeded` without a result, and a client polling for it stopped there.
 */
export function describeJob(job: Job, state: JobState | 'unknown'): Static<typeof JobView> {
  const status = toStatus(state);
  const view: Static<typeof JobView> = {
    id: String(job.id),
    status,
    // Done is 100 whatever the last mark was (a quick call is never marked running).
    progress: status === 'succeeded' ? 100 : typeof job.progress === 'number' ? job.progress : 0,
    attempts: job.attemptsMade,
    createdAt: new Date(job.timestamp).toISOString(),
  };
  if (job.finishedOn) view.finishedAt = new Date(job.finishedOn).toISOString();
  if (status === 'succeeded') view.result = job.returnvalue;
  if (status === 'failed') view.error = failureSentence(job);
  else if (job.failedReason) view.error = job.failedReason; // an attempt failed; a retry waits
  return view;
}

export default async function jobRoutes(base: FastifyInstance, deps: { enqueue: Enqueue; queues: QueueSet }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  app.post(
    '/jobs',
    {
      schema: {
        tags: ['http-jobs'],
        summary: 'Queue an HTTP request to be made in the background',
        body: HttpJobPayload,
        response: { 202: JobAccepted, ...commonErrors },
      },
    },
    async (request, reply) => {
      const job = await deps.enqueue('http-jobs', request.body);
      return reply.status(202).send({ id: String(job.id), status: 'queued' as const });
    },
  );

  app.get(
    '/jobs/:id',
    {
      schema: {
        tags: ['http-jobs'],
        summary: 'An HTTP job with its status and, once done, its result or error',
        params: JobParams,
        response: { 200: JobView, 404: ErrorResponse, ...commonErrors },
      },
    },
    async (request) => {
      const { id } = request.params;
      const queue = deps.queues['http-jobs'];
      const state = await queue.getJobState(id);
      const job = await queue.getJob(id);
      if (!job) throw new NotFoundError(`No HTTP job ${id}; finished jobs are kept for 24 hours.`);
      return describeJob(job, state);
    },
  );
}
