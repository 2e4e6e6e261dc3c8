import { type Job, UnrecoverableError } from 'bullmq';
import { ValidationError } from '../core/errors.ts';
import { validatePayload } from '../queues/enqueue.ts';
import type { QueueName, QueueResults } from '../queues/registry.ts';

// biome-ignore lint/suspicious/noExplicitAny: a processor's payload type is fixed by its own factory.
export type Processor<K extends QueueName> = (job: Job<any>) => Promise<QueueResults[K]>;

/**
 * One entry per queue, or the compiler complains. `null` means this version serves no
 * processor for that queue yet: its jobs wait in Redis rather than fail.
 */
export type ProcessorMap = { [K in QueueName]: Processor<K> | null };

/**
 * Wraps a queue's processor so that its job's data is checked against the queue's schema before
 * anything acts on it. enqueue() checks too, but jobs also arrive by other ways (Bull Board,
 * another client of the same Redis, an older version's jobs), and Redis is not a trust
 * boundary. A payload that fails is final: UnrecoverableError, never retried, the job fails
 * with the one sentence naming the field.
 */
export function checkPayloads<K extends QueueName>(name: K, processor: Processor<K>): Processor<K> {
  return async (job) => {
    try {
      validatePayload(name, job.data);
    } catch (err) {
      if (err instanceof ValidationError)
        throw new UnrecoverableError(`The ${name} job's data is invalid: ${err.message}`);
      throw err;
    }
    return processor(job);
  };
}
