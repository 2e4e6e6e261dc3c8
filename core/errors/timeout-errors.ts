import { DockhandError } from './dockhand-error.ts';

/** An outgoing HTTP request (HTTP jobs) took longer than its timeout. */
export class FetchTimeoutError extends DockhandError {
  constructor(timeoutMs: number) {
    super('fetch_timeout', 504, `The request did not complete within ${timeoutMs} ms.`);
  }
}

/** A synchronous caller stopped waiting for a job; the job may still finish. */
export class WaitTimeoutError extends DockhandError {
  constructor(jobId: string, ms: number) {
    super('wait_timeout', 504, `No result for ${jobId} within ${ms} ms; it may still finish.`);
  }
}
