import type { Job, JobState } from 'bullmq';

export const NO_FAILURE_REASON = 'The job failed without a reason (stalled or removed?).';

/** Why a failed job failed, as a sentence, never empty (an `Error('')`, a job failed by hand). */
export function failureSentence(job: Pick<Job, 'failedReason'>): string {
  return job.failedReason?.trim() || NO_FAILURE_REASON;
}

/** The two reads of a BullMQ Queue this needs, whatever its job types. */
interface JobSource<J> {
  getJobState(id: string): Promise<JobState | 'unknown'>;
  getJob(id: string): Promise<J | undefined | null>;
}

/**
 * A job and its state, read in that order on purpose: the job first and its state after, a job
 * that finished in between reads `completed` without the return value it has by then (an
 * invocation answered 200 with an empty body). The state first, a job read after it is at
 * least as new. Undefined when there is no such job (never was, or removed).
 */
export async function readJobWithState<J>(
  queue: JobSource<J>,
  id: string,
): Promise<{ job: J; state: JobState | 'unknown' } | undefined> {
  const state = await queue.getJobState(id);
  if (state === 'unknown') return undefined;
  const job = await queue.getJob(id);
  return job ? { job, state } : undefined;
}
