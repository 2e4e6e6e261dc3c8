import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * The direct way back for synchronous calls. A gateway names itself in the job (`replyTo`, an
 * id, never a channel: the worker builds the channel from its own prefix, so a job written
 * into Redis by someone else cannot make a worker publish elsewhere); the worker publishes the
 * result there the moment it has it, before BullMQ has finished the job and written its event.
 * The job still completes through BullMQ as always (retries, Bull Board, GET by id), and the
 * gateway also listens to the queue's events: whichever answer comes first is taken.
 */
export const REPLY_TO_PATTERN = '^[A-Za-z0-9-]{1,64}$';

export const replyChannel = (prefix: string, replyTo: string) => `${prefix}:replies:${replyTo}`;

/** A new gateway's reply id: unique per process, so two gateways never read each other's answers. */
export const newReplyId = () => randomUUID();

/** Worker side: one PUBLISH; a lost message costs only the shortcut, never the result. */
export function createReplyPublisher(redis: Redis, prefix: string) {
  return (replyTo: string, jobId: string, result: unknown): Promise<unknown> =>
    redis.publish(replyChannel(prefix, replyTo), JSON.stringify({ jobId, result }));
}
export type ReplyPublisher = ReturnType<typeof createReplyPublisher>;
