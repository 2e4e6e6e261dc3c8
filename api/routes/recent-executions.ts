import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Job, Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Static } from 'typebox';
import { execCancelKey, responseOfFinishedJob } from '../../queues/exec/state.ts';
import { commonErrors } from '../schemas/common.ts';
import { ExecList, ExecListQuery, type ExecSummary } from '../schemas/listings.ts';

type Summary = Static<typeof ExecSummary>;

const STATES = ['active', 'waiting', 'prioritized', 'delayed', 'completed', 'failed'] as const;

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

/** A job as a summary; Redis is not trusted, so the payload's fields are read by type. */
function summarise(job: Job, state: (typeof STATES)[number], cancelling: boolean): Summary {
  const id = String(job.id);
  const data = (job.data ?? {}) as Record<string, unknown>;
  const request = (data.request ?? {}) as Record<string, unknown>;
  const container = (request.container ?? {}) as Record<string, unknown>;
  const base = {
    execution_id: id,
    correlation_id: str(data.correlation_id) ?? id,
    createdAt: new Date(job.timestamp).toISOString(),
    ...(str(container.image) ? { image: str(container.image) } : {}),
  };
  if (state === 'completed' || state === 'failed') {
    const response = responseOfFinishedJob(job, id, state);
    const summary: Summary = {
      ...base,
      status: response.status ?? (response.success ? 'succeeded' : 'failed'),
      duration: response.duration,
      finishedAt: response.timestamp,
    };
    if (response.result) {
      summary.exit_code = response.result.exit_code;
      summary.output_files = response.result.output_files.length;
    }
    if (response.error) summary.error = response.error;
    return summary;
  }
  if (state === 'active') return { ...base, status: cancelling ? 'cancelling' : 'running' };
  return { ...base, status: 'queued' };
}

/** GET /exec: recent executions, newest first, each as a line; GET /exec/:id has the response. */
export default async function recentExecutionRoutes(
  base: FastifyInstance,
  deps: { queues: { exec: Queue }; redis: Redis; keyPrefix: string },
) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  app.get(
    '/exec',
    {
      schema: {
        tags: ['exec'],
        summary: 'Recent executions (running, queued and finished), newest first',
        description: 'Executions cancelled while queued leave no job and are not listed.',
        querystring: ExecListQuery,
        response: { 200: ExecList, ...commonErrors },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? 50;
      const found: Summary[] = [];
      for (const state of STATES) {
        const jobs = await deps.queues.exec.getJobs([state], 0, limit - 1, false);
        for (const job of jobs) {
          if (!job) continue;
          const cancelling =
            state === 'active' &&
            (await deps.redis.exists(execCancelKey(deps.keyPrefix, String(job.id)))) === 1;
          found.push(summarise(job, state, cancelling));
        }
      }
      found.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
      return { executions: found.slice(0, limit) };
    },
  );
}
