import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * The way back for synchronous calls. A gateway names itself in the job (`replyTo`, an id,
 * never a channel: the worker builds the channel from its own prefix, so a job written into
 * Redis by someone else cannot make a worker publish elsewhere); the worker publishes the
 * result there the moment it has it, before BullMQ has finished the job, and a final failure
 * too. The job still completes or fails through BullMQ as always (retries, Bull Board, GET by
 * id); a message lost on the way is covered by the waiter reading the job itself
 * (queues/result-waiter.ts).
 */
export const REPLY_TO_PATTERN = '^[A-Za-z0-9-]{1,64}$';

export const replyChannel = (prefix: string, replyTo: string) => `${prefix}:replies:${replyTo}`;

/** A new gateway's reply id: unique per process, so two gateways never read each other's answers. */
export const newReplyId = () => randomUUID();

/** What travels on a reply channel: a result, or why the job failed for good. */
export type ReplyMessage = { jobId: string; result: unknown } | { jobId: string; error: string };

/** A gateway in this same process (role `all`): its reply id, and how it takes a message. */
export interface LocalGateway {
  replyTo: string;
  receive(message: string): void;
}

/**
 * Worker side: one PUBLISH each; a lost message costs only the shortcut, never the result. A
 * reply to a gateway in this same process is handed over in memory: the same serialised message,
 * without the Redis write and the subscriber's wake-up (0.2–0.5 ms of a sequential call here).
 */
export function createReplyPublisher(redis: Redis, prefix: string, local?: LocalGateway) {
  const send = async (replyTo: string, message: ReplyMessage): Promise<unknown> => {
    const text = JSON.stringify(message);
    // On the next turn, once the worker has handed BullMQ the job's completion: answered inside
    // the worker's turn, 32 calls in flight ran ~8 % slower in an A/B here.
    if (local && replyTo === local.replyTo) return void setImmediate(() => local.receive(text));
    return redis.publish(replyChannel(prefix, replyTo), text);
  };
  return {
    result: (replyTo: string, jobId: string, result: unknown): Promise<unknown> =>
      send(replyTo, { jobId, result }),
    failure: (replyTo: string, jobId: string, error: string): Promise<unknown> =>
      send(replyTo, { jobId, error }),
  };
}
export type ReplyPublisher = ReturnType<typeof createReplyPublisher>;
