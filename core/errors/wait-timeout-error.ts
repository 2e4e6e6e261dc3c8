import { DockhandError } from './dockhand-error.ts';

/** A synchronous caller stopped waiting for a job; the job may still finish. */
export class WaitTimeoutError extends DockhandError {
  constructor(jobId: string, ms: number) {
    super('wait_timeout', 504, `No result for ${jobId} within ${ms} ms; it may still finish.`);
  }
}
