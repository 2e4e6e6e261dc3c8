import { randomUUID } from 'node:crypto';
import type { Job, JobsOptions } from 'bullmq';
import type { Static, TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { ValidationError } from '../core/errors.ts';
import { describeSchemaIssue } from '../core/schema-errors.ts';
import { checkJobId } from './job-ids.ts';
import type { QueueSet } from './queue-set.ts';
import { type QueueName, queueCatalog, queueNames } from './registry.ts';

export type Payload<K extends QueueName> = Static<(typeof queueCatalog)[K]['payload']>;

/**
 * A schema's check, compiled once: returns the data typed, or throws ValidationError naming the
 * first bad field in the words the gateway would use (with the field's description).
 */
export function compileValidator<T extends TSchema>(schema: T): (data: unknown) => Static<T> {
  const checker = Compile(schema);
  return (data) => {
    if (checker.Check(data)) return data as Static<T>;
    const first = checker.Errors(data)[0];
    const description = first && schemaAt(schema, first.instancePath)?.description;
    const { field, message } = describeSchemaIssue(first && { ...first, description }, '');
    throw new ValidationError(field, message);
  };
}

const validators = Object.fromEntries(
  queueNames.map((name) => [name, compileValidator(queueCatalog[name].payload)]),
) as { [K in QueueName]: (data: unknown) => Payload<K> };

function schemaAt(schema: TSchema, pointer: string): { description?: string } | undefined {
  let current: unknown = schema;
  for (const key of pointer.split('/').filter(Boolean)) {
    current = (current as { properties?: Record<string, unknown> } | undefined)?.properties?.[key];
  }
  return current as { description?: string } | undefined;
}

/** Throws ValidationError naming the first bad field, in the words the gateway would use. */
export function validatePayload<K extends QueueName>(name: K, data: unknown): Payload<K> {
  return validators[name](data);
}

/**
 * The one way work enters Dockhand: the gateway, the CLI and the pub/sub bridge all call
 * this, so a payload is checked the same way whoever sends it. Job ids are UUIDs unless the
 * caller brings its own (an idempotency key: the same id twice is one job), which must not be
 * one of BullMQ's own key names (queues/job-ids.ts).
 */
export function createEnqueue(queues: QueueSet) {
  return async function enqueue<K extends QueueName>(
    name: K,
    data: unknown,
    options: JobsOptions = {},
  ): Promise<Job<Payload<K>>> {
    const payload = validatePayload(name, data);
    const jobId = options.jobId === undefined ? randomUUID() : checkJobId(options.jobId);
    return queues[name].add(name, payload, { ...queueCatalog[name].jobOptions, ...options, jobId });
  };
}
export type Enqueue = ReturnType<typeof createEnqueue>;

/**
 * Many jobs on one queue in one round trip (BullMQ addBulk), in order; every payload is
 * checked before any is added, so a bad one adds none.
 */
export function createEnqueueBulk(queues: QueueSet) {
  return async function enqueueBulk<K extends QueueName>(
    name: K,
    items: Array<{ data: unknown; options?: JobsOptions }>,
  ): Promise<Job<Payload<K>>[]> {
    const jobs = items.map(({ data, options = {} }) => ({
      name,
      data: validatePayload(name, data),
      opts: {
        ...queueCatalog[name].jobOptions,
        ...options,
        jobId: options.jobId === undefined ? randomUUID() : checkJobId(options.jobId),
      },
    }));
    return queues[name].addBulk(jobs);
  };
}
export type EnqueueBulk = ReturnType<typeof createEnqueueBulk>;
