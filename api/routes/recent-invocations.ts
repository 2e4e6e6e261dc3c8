import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Job, Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Static } from 'typebox';
import { commonErrors } from '../schemas/common.ts';
import { InvocationList, InvocationListQuery, type InvocationSummary } from '../schemas/listings.ts';
import { failureSentence } from './jobs.ts';

type Summary = Static<typeof InvocationSummary>;
type Status = Summary['status'];

/** The BullMQ states looked at, and what each means for an invocation. */
const STATES = [
  ['active', 'RUNNING'],
  ['waiting', 'PENDING'],
  ['prioritized', 'PENDING'],
  ['delayed', 'PENDING'],
  ['completed', undefined],
  ['failed', 'FAILED'],
] as const;

/** Jobs read per state: a filtered list looks this far back, no further. */
const SCAN_PER_STATE = 500;

const RESULT_STATUSES = new Set<string>(['SUCCESS', 'FAILED', 'TIMEOUT', 'CANCELLED']);
const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/** A job as a summary. Redis is not trusted: only fields of the expected types are taken. */
export function summariseInvocation(job: Job, state: Status | undefined): Summary | undefined {
  const data = (job.data ?? {}) as Record<string, unknown>;
  const functionName = str(data.functionName);
  if (!functionName) return undefined;
  const result = (state === undefined ? (job.returnvalue ?? {}) : {}) as Record<string, unknown>;
  const resultStatus = str(result.status);
  const status: Status =
    state ?? (resultStatus && RESULT_STATUSES.has(resultStatus) ? (resultStatus as Status) : 'SUCCESS');
  const resources = (result.resources ?? {}) as Record<string, unknown>;
  const error = (result.error ?? {}) as Record<string, unknown>;
  const summary: Summary = {
    requestId: String(job.id),
    functionName,
    status,
    createdAt: new Date(job.timestamp).toISOString(),
  };
  const source = str(data.source);
  if (source) summary.source = source;
  const durationMs = num(result.durationMs);
  if (durationMs !== undefined) summary.durationMs = durationMs;
  if (typeof result.coldStart === 'boolean') summary.coldStart = result.coldStart;
  const memoryUsedMb = num(resources.memoryUsedMb);
  if (memoryUsedMb !== undefined) summary.memoryUsedMb = memoryUsedMb;
  if (state === 'FAILED') summary.error = failureSentence(job);
  else if (status !== 'SUCCESS') {
    const message = str(error.errorMessage);
    if (message) summary.error = message.slice(0, 500);
  }
  const finishedAt = iso(job.finishedOn);
  if (finishedAt) summary.finishedAt = finishedAt;
  return summary;
}

/** GET /invocations: the recent calls of every function, or of one, newest first. */
export default async function recentInvocationRoutes(
  base: FastifyInstance,
  deps: { queues: { functions: Queue } },
) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  app.get(
    '/invocations',
    {
      schema: {
        tags: ['functions'],
        summary: 'Recent invocations (running, queued and finished), newest first; ?function= for one',
        querystring: InvocationListQuery,
        response: { 200: InvocationList, ...commonErrors },
      },
    },
    async (request) => {
      const { function: name, status, limit = 50 } = request.query;
      const filtered = name !== undefined || status !== undefined;
      const perState = filtered ? SCAN_PER_STATE : limit;
      const found: Summary[] = [];
      for (const [state, as] of STATES) {
        // A finished job's status is in its result; the others' is their state.
        if (status && (as ? as !== status : status === 'PENDING' || status === 'RUNNING')) continue;
        const jobs = await deps.queues.functions.getJobs([state], 0, perState - 1, false);
        for (const job of jobs) {
          if (!job) continue;
          const summary = summariseInvocation(job, as);
          if (!summary) continue;
          if (name !== undefined && summary.functionName !== name) continue;
          if (status !== undefined && summary.status !== status) continue;
          found.push(summary);
        }
      }
      found.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
      return { invocations: found.slice(0, limit) };
    },
  );
}
