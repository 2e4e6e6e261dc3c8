import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { Compile } from 'typebox/compile';
import { cancelChannel, cancelJob, createRunningJobs, type RunningJobsOptions } from './job-cancel.ts';
import { failureSentence, readJobWithState } from './job-read.ts';
import { REPLY_TO_PATTERN, type ReplyPublisher } from './reply-path.ts';
import { InvocationPayload, InvocationResult } from './schemas/functions.ts';

/*
 * Cancelling an invocation (DELETE /invocations/:requestId) by the shared way of
 * queues/job-cancel.ts. Its keys are `<prefix>:invocations:…`, not under the `functions` queue's
 * own `<prefix>:functions:…`, where the flag of an id such as `lock` would be another job's lock.
 */
const KIND = 'invocations';
// As long as BullMQ keeps a finished invocation (queues/registry.ts keepFinished: a day).
const KEEP_SECONDS = 86_400;

/** Every functions worker subscribes; the message is a request id. */
export const invocationCancelChannel = (prefix: string) => cancelChannel(prefix, KIND);
/** The result of an invocation cancelled while queued: its job is gone, this stays. */
const cancelledKey = (prefix: string, id: string) => `${prefix}:${KIND}:cancelled:${id}`;

export const createRunningInvocations = (redis: Redis, prefix: string, options?: RunningJobsOptions) =>
  createRunningJobs(redis, prefix, KIND, options);

/** A result for a call that never ran its handler (cancelled first, or too old to run). */
export function notRunResult(
  requestId: string,
  functionName: string,
  status: InvocationResult['status'],
  error: { errorType: string; errorMessage: string },
): InvocationResult {
  return {
    requestId,
    functionName,
    status,
    durationMs: 0,
    result: null,
    error,
    logs: '',
    logsTruncated: false,
    resources: { memoryUsedMb: 0, cpuUsagePercent: 0, networkRxBytes: 0, networkTxBytes: 0 },
    autoTuner: {
      recommendation: 'n/a',
      recommendationMb: 0,
      savings: 0,
      monthlySavingsUsd: 0,
      pattern: 'not-run',
      tip: 'The handler did not run: nothing was measured.',
    },
    coldStart: false,
  };
}

const checkPayload = Compile(InvocationPayload);
const checkResult = Compile(InvocationResult);
const validReplyTo = new RegExp(REPLY_TO_PATTERN);

export type InvocationCancel =
  | { outcome: 'cancelled'; result: InvocationResult }
  | { outcome: 'cancelling' | 'finished' | 'unknown' };

/**
 * Cancels a queued or running invocation. A queued one (also one waiting for a retry) is removed
 * and its CANCELLED result stored (GET /invocations/:id reads it) and sent to a synchronous caller
 * still waiting (its `replyTo`); a running one is stopped by its worker, whose result says so.
 */
export async function cancelInvocation(
  deps: { queue: Queue; redis: Redis; prefix: string; reply: ReplyPublisher },
  id: string,
): Promise<InvocationCancel> {
  const { queue, redis, prefix } = deps;
  const done = await cancelJob({ queue, redis, prefix, kind: KIND, keepSeconds: KEEP_SECONDS }, id);
  if (done.outcome === 'missing')
    return { outcome: (await redis.exists(cancelledKey(prefix, id))) ? 'finished' : 'unknown' };
  if (done.outcome === 'finished') return { outcome: 'finished' };
  if (done.outcome === 'signalled') return { outcome: 'cancelling' };
  // Redis is not a trust boundary: only a payload that checks names the function and the caller.
  const data = checkPayload.Check(done.job.data) ? done.job.data : undefined;
  const result = notRunResult(id, data?.functionName ?? 'unknown', 'CANCELLED', {
    errorType: 'Cancelled',
    errorMessage: 'The invocation was cancelled before it ran.',
  });
  await redis.set(cancelledKey(prefix, id), JSON.stringify(result), 'EX', KEEP_SECONDS);
  if (data?.replyTo && validReplyTo.test(data.replyTo))
    await deps.reply.result(data.replyTo, id, result).catch(() => {});
  return { outcome: 'cancelled', result };
}

/** Where an invocation stands, as its route and a waiting gateway both read it. */
export type InvocationState =
  | { state: 'completed'; result: InvocationResult }
  | { state: 'failed'; reason: string }
  | { state: 'queued' | 'running' };

/**
 * An invocation's job, or the result kept of one cancelled while queued (its job is gone);
 * undefined when there is neither (never was, or past the kept history).
 */
export async function readInvocation(
  queue: Queue,
  redis: Redis,
  prefix: string,
  id: string,
): Promise<InvocationState | undefined> {
  const read = await readJobWithState(queue, id);
  if (!read) {
    const cancelled = await readCancelledInvocation(redis, prefix, id);
    return cancelled && { state: 'completed', result: cancelled };
  }
  const { job, state } = read;
  if (state === 'completed') return { state: 'completed', result: job.returnvalue as InvocationResult };
  if (state === 'failed') return { state: 'failed', reason: failureSentence(job) };
  return { state: state === 'active' ? 'running' : 'queued' };
}

/** The stored result of an invocation cancelled while queued, if it was. */
export async function readCancelledInvocation(
  redis: Redis,
  prefix: string,
  id: string,
): Promise<InvocationResult | undefined> {
  const raw = await redis.get(cancelledKey(prefix, id));
  if (!raw) return undefined;
  try {
    const value = JSON.parse(raw) as unknown;
    return checkResult.Check(value) ? value : undefined;
  } catch {
    return undefined;
  }
}
