import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { failedExecResponse } from '../queues/exec/responses.ts';
import { createRunningExecutions } from '../queues/exec/state.ts';
import type { ExecJobPayload, ExecResponse } from '../queues/schemas/exec.ts';
import type { Execute } from './exec/run-execution.ts';

/**
 * The `exec` queue's processor: runs each job's execution with an abort signal that a cancel
 * reaches in two ways (queues/exec/state.ts): the flag, read when the job starts (a cancel that
 * came while the job was being picked up), and cancel(id), called by whoever hears the cancel
 * channel. The job always completes with a response; how it ended is in the response.
 */
export function createExecProcessor(deps: {
  execute: Execute;
  redis: Redis;
  prefix: string;
  /** Told how each execution ended (closes its live log). */
  onEnd?: (id: string, status: string) => void;
}) {
  const running = createRunningExecutions(deps.redis, deps.prefix);

  const processor = async (job: Job<ExecJobPayload>): Promise<ExecResponse> => {
    const id = job.data.execution_id;
    // Routes, cancels and object names all go by the job's id: a job written into Redis with
    // another id inside would be cancelled, read and uploaded under a name that is not its own.
    if (id !== job.id)
      return failedExecResponse(job.data, `The job's execution_id ${JSON.stringify(id)} is not its job id.`);
    try {
      const signal = await running.begin(id);
      await job.updateProgress({ state: 'running' }).catch(() => {});
      const response = await deps.execute(job.data, signal);
      deps.onEnd?.(id, response.status ?? (response.success ? 'succeeded' : 'failed'));
      return response;
    } finally {
      running.end(id);
    }
  };

  return {
    processor,
    /** Kills the execution if this process runs it; answers whether it did. */
    cancel: running.cancel,
    /** Executions running in this process (the node agent reports them). */
    active: running.size,
  };
}
