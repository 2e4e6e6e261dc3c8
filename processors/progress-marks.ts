import type { Job } from 'bullmq';

/** Nothing is written for a job done sooner than this: no one could have seen it run. */
export const FIRST_MARK_MS = 100;
/** Then at most one write per this long, the latest value winning. */
export const MARK_EVERY_MS = 250;

/**
 * Progress for jobs that are mostly quick: each BullMQ progress update is a script and an event
 * on the queue's stream, which for a 2 ms call was a Redis write on its path and more CPU than
 * the work. Marks are held until the job has run FIRST_MARK_MS, then written at most every
 * MARK_EVERY_MS; a finished job reads 100 from its state (api/routes/jobs.ts), not from a mark.
 */
export function createProgressMarks(
  job: Pick<Job, 'updateProgress'>,
  { firstAfterMs = FIRST_MARK_MS, everyMs = MARK_EVERY_MS } = {},
) {
  let pending: number | undefined;
  let written: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  let nextAt = Date.now() + firstAfterMs;
  let stopped = false;
  const flush = () => {
    timer = undefined;
    if (stopped || pending === undefined || pending === written) return;
    written = pending;
    nextAt = Date.now() + everyMs;
    // Advisory: a lost update must not fail the job it describes.
    void job.updateProgress(pending).catch(() => {});
  };
  return {
    set(value: number): void {
      if (stopped) return;
      pending = value;
      timer ??= setTimeout(flush, Math.max(0, nextAt - Date.now()));
    },
    /** The job is over: nothing more is written. */
    stop(): void {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
