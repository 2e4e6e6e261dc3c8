import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { failedExecResponse } from '../queues/exec/responses.ts';
import { execCancelKey } from '../queues/exec/state.ts';
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
  const running = new Map<string, AbortController>();

  const processor = async (job: Job<ExecJobPayload>): Promise<ExecResponse> => {
    const id = job.data.execution_id;
    // Routes, cancels and object names all go by the job's id: a job written into Redis with
    // another id inside would be cancelled, read and uploaded under a name that is not its own.
    if (id !== job.id)
      return failedExecResponse(job.data, `The job's execution_id ${JSON.stringify(id)} is not its job id.`);
    const controller = new AbortController();
    running.set(id, controller);
    try {
      if (await deps.redis.exists(execCancelKey(deps.prefix, id))) controller.abort();
      await job.updateProgress({ state: 'running' }).catch(() => {});
      const response = await deps.execute(job.data, controller.signal);
      deps.onEnd?.(id, response.status ?? (response.success ? 'succeeded' : 'failed'));
      return response;
    } finally {
      running.delete(id);
    }
  };

  return {
    processor,
    /** Kills the execution if this process runs it; answers whether it did. */
    cancel(id: string): boolean {
      const controller = running.get(id);
      controller?.abort();
      return controller !== undefined;
    },
    /** Executions running in this process (the node agent reports them). */
    active: () => running.size,
  };
}
