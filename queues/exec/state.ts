import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { compileValidator } from '../enqueue.ts';
import {
  cancelChannel,
  cancelFlagKey,
  cancelJob,
  cancelRequested,
  createRunningJobs,
} from '../job-cancel.ts';
import { readJobWithState } from '../job-read.ts';
import { ExecJobPayload, ExecResponse } from '../schemas/exec.ts';
import { failedExecResponse } from './responses.ts';

/*
 * Where an execution stands, and cancelling it, for every entrance (HTTP, bridge, CLI), by the
 * shared way of queues/job-cancel.ts (remove when queued, flag + channel when running).
 */

// Not the queue's name: under `<prefix>:exec:` the flag of an execution named `lock` would be
// the lock key of the job named `cancel` (queues/job-cancel.ts).
const KIND = 'exec-runs';
/** Every exec worker subscribes; the message is an execution id. */
export const execCancelChannel = (prefix: string) => cancelChannel(prefix, KIND);
export const execCancelKey = (prefix: string, id: string) => cancelFlagKey(prefix, KIND, id);
/** The worker's side: its running executions, aborted by the channel or the flag read at start. */
export const createRunningExecutions = (redis: Redis, prefix: string) =>
  createRunningJobs(redis, prefix, KIND);
/** The response of an execution cancelled while queued: its job is gone, this stays. */
const cancelledKey = (prefix: string, id: string) => `${prefix}:${KIND}:cancelled:${id}`;
// As long as BullMQ keeps a finished exec job (queues/registry.ts keepFinished: a day).
const KEEP_SECONDS = 86_400;

export type ExecState =
  | { state: 'queued' | 'running' | 'cancelling'; execution_id: string; correlation_id: string }
  | { state: 'finished'; execution_id: string; correlation_id: string; response: ExecResponse };

const readPayload = compileValidator(ExecJobPayload);
const readResponse = compileValidator(ExecResponse);

/** The job's ids, checked: Redis is not a trust boundary. */
function idsOf(job: Job, id: string): { execution_id: string; correlation_id: string } {
  try {
    const payload = readPayload(job.data);
    return { execution_id: id, correlation_id: payload.correlation_id };
  } catch {
    return { execution_id: id, correlation_id: id };
  }
}

/** The response a finished job stands for, or a failure sentence when its value is not one. */
export function responseOfFinishedJob(job: Job, id: string, state: 'completed' | 'failed'): ExecResponse {
  const ids = idsOf(job, id);
  if (state === 'failed') {
    return failedExecResponse(ids, job.failedReason?.trim() || 'The execution failed without a reason.', {
      startedAt: job.processedOn ?? job.timestamp,
      now: job.finishedOn ?? Date.now(),
    });
  }
  try {
    return readResponse(job.returnvalue);
  } catch {
    return failedExecResponse(ids, 'The execution finished but its stored response is not valid.');
  }
}

export async function describeExecution(
  queue: Queue,
  redis: Redis,
  prefix: string,
  id: string,
): Promise<ExecState | undefined> {
  const read = await readJobWithState(queue, id);
  if (!read) {
    const stored = await redis.get(cancelledKey(prefix, id));
    if (!stored) return undefined;
    try {
      const response = readResponse(JSON.parse(stored));
      return { state: 'finished', execution_id: id, correlation_id: response.correlation_id, response };
    } catch {
      return undefined;
    }
  }
  const { job, state } = read;
  if (state === 'completed' || state === 'failed') {
    const response = responseOfFinishedJob(job, id, state);
    return { state: 'finished', execution_id: id, correlation_id: response.correlation_id, response };
  }
  const ids = idsOf(job, id);
  if (state === 'active') {
    const cancelling = await cancelRequested(redis, prefix, KIND, id);
    return { state: cancelling ? 'cancelling' : 'running', ...ids };
  }
  return { state: 'queued', ...ids };
}

/**
 * Cancels a queued or running execution. Answers what happened: `cancelled` (it was queued
 * and will never run: its response is stored), `cancelling` (a worker is killing it; its
 * response will say cancelled), `finished` (too late), or `unknown`.
 */
export async function cancelExecution(
  queue: Queue,
  redis: Redis,
  prefix: string,
  id: string,
): Promise<'cancelled' | 'cancelling' | 'finished' | 'unknown'> {
  const done = await cancelJob({ queue, redis, prefix, kind: KIND, keepSeconds: KEEP_SECONDS }, id);
  if (done.outcome === 'missing')
    return (await redis.exists(cancelledKey(prefix, id))) ? 'finished' : 'unknown';
  if (done.outcome === 'finished') return 'finished';
  if (done.outcome === 'signalled') return 'cancelling';
  const response = failedExecResponse(idsOf(done.job, id), 'The execution was cancelled before it started.', {
    status: 'cancelled',
  });
  await redis.set(cancelledKey(prefix, id), JSON.stringify(response), 'EX', KEEP_SECONDS);
  return 'cancelled';
}
