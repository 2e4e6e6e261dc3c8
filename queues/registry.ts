import type { JobsOptions } from 'bullmq';
import { type TSchema, Type } from 'typebox';
import type { BatchOutcome } from '../processors/batches/run-batch.ts';
import type { InvocationResult } from '../processors/functions.ts';
import { BatchJobPayload } from './schemas/batches.ts';
import { InvocationPayload } from './schemas/functions.ts';
import { HttpJobPayload, type HttpJobResult } from './schemas/http-jobs.ts';

export interface QueueDefinition {
  /** Checked by enqueue() before anything reaches Redis. */
  payload: TSchema;
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

// Until a queue's own issue lands its processor, its payload is any JSON object: jobs wait
// there, unprocessed and unlost, for a version that serves the queue.
const Pending = Type.Object({}, { additionalProperties: true });

/** Every queue Dockhand owns: name → payload schema and job defaults. */
export const queueCatalog = {
  functions: { payload: InvocationPayload, jobOptions: retried },
  exec: { payload: Pending, jobOptions: { ...keepFinished, attempts: 1 } },
  batches: { payload: BatchJobPayload, jobOptions: retried },
  'http-jobs': { payload: HttpJobPayload, jobOptions: retried },
  // Ticks are not retried: the next tick comes anyway, and every handler is idempotent.
  scheduler: {
    payload: Type.Object({ reason: Type.Optional(Type.String()) }),
    jobOptions: { ...keepFinished, attempts: 1 },
  },
} as const satisfies Record<string, QueueDefinition>;

export type QueueName = keyof typeof queueCatalog;
export const queueNames = Object.keys(queueCatalog) as QueueName[];

/** What a processor on each queue returns; queues still `unknown` get their type with their issue. */
export interface QueueResults {
  functions: InvocationResult;
  exec: unknown;
  batches: BatchOutcome;
  'http-jobs': HttpJobResult;
  scheduler: TickSummary;
}

export interface TickSummary {
  handlers: Record<string, { ok: boolean; result?: unknown; error?: string }>;
}

export function isQueueName(name: string): name is QueueName {
  return Object.hasOwn(queueCatalog, name);
}
