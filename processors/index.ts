import type { Job } from 'bullmq';
import type { QueueName, QueueResults } from '../queues/registry.ts';

// biome-ignore lint/suspicious/noExplicitAny: a processor's payload type is fixed by its own factory.
export type Processor<K extends QueueName> = (job: Job<any>) => Promise<QueueResults[K]>;

/**
 * One entry per queue, or the compiler complains. `null` means this version serves no
 * processor for that queue yet: its jobs wait in Redis rather than fail.
 */
export type ProcessorMap = { [K in QueueName]: Processor<K> | null };
