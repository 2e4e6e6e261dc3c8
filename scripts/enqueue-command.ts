import { readFile } from 'node:fs/promises';
import { QueueEvents } from 'bullmq';
import type { Config } from '../core/config.ts';
import { coerceError, UsageError, ValidationError } from '../core/errors.ts';
import { closeRedis, connectRedis, createRedis } from '../queues/connection.ts';
import { createEnqueue, validatePayload } from '../queues/enqueue.ts';
import { execJob, submitExec, validateExecRequest } from '../queues/exec/submission.ts';
import { createQueueSet } from '../queues/queue-set.ts';
import { isQueueName, queueNames } from '../queues/registry.ts';

export interface EnqueueCommand {
  queue: string;
  /** A JSON file's path, or - for stdin. */
  source: string;
  wait: boolean;
  jobId?: string;
}

async function readPayload(source: string): Promise<unknown> {
  let text: string;
  try {
    text = source === '-' ? await readStdin() : await readFile(source, 'utf8');
  } catch (err) {
    throw new ValidationError(
      source,
      `Cannot read ${source}: ${coerceError(err).message}.`,
      'unreadable_input',
    );
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new ValidationError(
      source,
      `${source === '-' ? 'stdin' : source} is not valid JSON.`,
      'invalid_json',
    );
  }
}

function isExecJob(payload: unknown): boolean {
  return typeof payload === 'object' && payload !== null && 'request' in payload && 'execution_id' in payload;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Puts one job on a queue through the same enqueue() the gateway uses, prints its id and,
 * with --wait, its result. Exit: 0 queued or succeeded, 1 the job failed, 2 bad input.
 */
export async function enqueueFromCli(
  config: Config,
  command: EnqueueCommand,
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WriteStream | NodeJS.WritableStream = process.stderr,
): Promise<number> {
  if (!isQueueName(command.queue)) {
    throw new UsageError(`No queue ${command.queue}; queues are ${queueNames.join(', ')}.`);
  }
  const name = command.queue;
  const payload = await readPayload(command.source);
  const producer = await connectRedis(createRedis(config.redis.url, 'producer'), config.redis.url);
  const queues = createQueueSet(producer, config.redis.prefix);
  // Listening starts before the job is added, so a fast job's end cannot be missed.
  const events = command.wait
    ? new QueueEvents(name, {
        connection: createRedis(config.redis.url, 'worker'),
        prefix: config.redis.prefix,
      })
    : undefined;
  try {
    await events?.waitUntilReady();
    const enqueue = createEnqueue(queues);
    // An exec file is the Exec Agent request itself, as its users write it; the job wraps it.
    const job =
      name === 'exec'
        ? await submitExec(
            enqueue,
            config.exec,
            isExecJob(payload)
              ? validatePayload('exec', payload)
              : execJob(validateExecRequest(payload), 'cli', command.jobId),
          )
        : await enqueue(name, payload, command.jobId ? { jobId: command.jobId } : {});
    out.write(`${job.id}\n`);
    if (!events) return 0;
    const tty = 'isTTY' in err && err.isTTY;
    if (tty) {
      events.on('progress', ({ jobId, data }) => {
        if (jobId === job.id)
          err.write(`\rprogress: ${typeof data === 'number' ? `${data}%` : JSON.stringify(data)}   `);
      });
    }
    try {
      const result = await job.waitUntilFinished(events);
      if (tty) err.write('\n');
      out.write(`${JSON.stringify(result, null, 2)}\n`);
      return 0;
    } catch (failure) {
      if (tty) err.write('\n');
      err.write(`job ${job.id} failed: ${coerceError(failure).message}\n`);
      return 1;
    }
  } finally {
    await events?.close();
    await queues.close();
    await closeRedis(producer);
  }
}
