import { type Job, UnrecoverableError } from 'bullmq';
import { AddressRefusedError } from '../core/errors.ts';
import type { SafeFetch } from '../core/safe-fetch.ts';
import {
  HTTP_JOB_DEFAULT_TIMEOUT_MS,
  type HttpJobPayload,
  type HttpJobResult,
} from '../queues/schemas/http-jobs.ts';
import { createProgressMarks } from './progress-marks.ts';

export interface HttpJobsDeps {
  fetch: SafeFetch;
}

/**
 * Fetches the job's URL. Transport failures (refused connection, reset, timeout) throw and
 * BullMQ retries them with backoff; a refused address is final at once, because retrying a
 * policy decision only delays the same answer. A 4xx/5xx reply is a fetched page, not a failure.
 */
export function createHttpJobsProcessor(deps: HttpJobsDeps) {
  return async (job: Job<HttpJobPayload>): Promise<HttpJobResult> => {
    const { url, method = 'GET', headers = {}, body, timeoutMs = HTTP_JOB_DEFAULT_TIMEOUT_MS } = job.data;
    // 10 once fetching, up to 100 as the body arrives: held back for a quick fetch, throttled after.
    const progress = createProgressMarks(job);
    progress.set(10);
    try {
      return await deps.fetch({ url, method, headers, body, timeoutMs }, (fraction) =>
        progress.set(Math.round(10 + 90 * fraction)),
      );
    } catch (err) {
      if (err instanceof AddressRefusedError) throw new UnrecoverableError(err.message);
      throw err;
    } finally {
      progress.stop();
    }
  };
}
