import type { JobsOptions } from 'bullmq';
import type { Static, TSchema } from 'typebox';
import { BatchJobPayload, BatchOutcome } from './schemas/batches.ts';
import { ExecJobPayload, ExecResponse } from './schemas/exec.ts';
import { InvocationPayload, InvocationResult } from './schemas/functions.ts';
import { HttpJobPayload, HttpJobResult } from './schemas/http-jobs.ts';
import { TickPayload, TickSummary } from './schemas/scheduler.ts';
import { SweepPayload, SweepResult } from './schemas/sweeps.ts';

export interface QueueDefinition {
  /** Checked by enqueue() before anything reaches Redis. */
  payload: TSchema;
  /** What the queue's processor returns; routes serialise the same schema. */
  result: TSchema;
  /** Defaults for every job on this queue; enqueue() callers may override per job. */
  jobOptions: JobsOptions;
}

// Finished jobs are kept long enough to be read back by id, but bounded so Redis
// does not grow without limit: a day or 10k jobs, whichever comes first.
const keepFinished = {
  removeOnComplete: { age: 86_400, count: 10_000 },
  removeOnFail: { age: 7 * 86_400, count: 50_000 },
};
const retried: JobsOptions = { attempts: 3, backoff: { type: 'exponential', delay: 1000 }, ...keepFinished };

/** Every queue Dockhand owns: name → payload and result schemas, job defaults. */
export const queueCatalog = {
  // Backoff `invocation`: the functions Worker's strategy (processors/functions/async-invocations.ts)
  // waits minutes after a handler's failure of an Event call, seconds after Dockhand's own.
  functions: {
    payload: InvocationPayload,
    result: InvocationResult,
    jobOptions: { ...retried, backoff: { type: 'invocation', delay: 1000 } },
  },
  // Power tuning: one job runs the whole sweep on a worker, with progress, instead of an HTTP
  // request holding hundreds of calls. Not retried: a sweep half-run is asked again.
  sweeps: { payload: SweepPayload, result: SweepResult, jobOptions: { ...keepFinished, attempts: 1 } },
  // Not retried: a command may have had effects; the response says how it ended.
  exec: { payload: ExecJobPayload, result: ExecResponse, jobOptions: { ...keepFinished, attempts: 1 } },
  batches: { payload: BatchJobPayload, result: BatchOutcome, jobOptions: retried },
  'http-jobs': { payload: HttpJobPayload, result: HttpJobResult, jobOptions: retried },
  // Ticks are not retried: the next tick comes anyway, and every handler is idempotent.
  scheduler: { payload: TickPayload, result: TickSummary, jobOptions: { ...keepFinished, attempts: 1 } },
} as const satisfies Record<string, QueueDefinition>;

export type QueueName = keyof typeof queueCatalog;
export const queueNames = Object.keys(queueCatalog) as QueueName[];

/** Each queue's payload and result types, derived from the schemas so they cannot drift. */
export type QueuePayloads = { [K in QueueName]: Static<(typeof queueCatalog)[K]['payload']> };
export type QueueResults = { [K in QueueName]: Static<(typeof queueCatalog)[K]['result']> };

export function isQueueName(name: string): name is QueueName {
  return Object.hasOwn(queueCatalog, name);
}
