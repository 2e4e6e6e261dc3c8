import { QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { WaitTimeoutError } from '../core/errors.ts';
import { newReplyId, replyChannel } from './reply-path.ts';

interface Waiting {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Waits for jobs of one queue to finish, for many callers at once. Two ways back, first wins:
 * this gateway's own reply channel (queues/reply-path.ts: the worker publishes as soon as the
 * result exists) and the queue's QueueEvents stream (completed/failed, written when BullMQ
 * finishes the job: also what a job without `replyTo` answers on). Register before adding the
 * job, so a fast job cannot finish unseen.
 */
export function createResultWaiter(
  queue: string,
  connections: { events: Redis; replies: Redis },
  prefix: string,
) {
  const replyTo = newReplyId();
  const channel = replyChannel(prefix, replyTo);
  const events = new QueueEvents(queue, { connection: connections.events, prefix });
  const waiting = new Map<string, Waiting>();
  const settle = (jobId: string, fn: (w: Waiting) => void) => {
    const w = waiting.get(jobId);
    if (!w) return;
    waiting.delete(jobId);
    clearTimeout(w.timer);
    fn(w);
  };
  events.on('completed', ({ jobId, returnvalue }) => {
    settle(jobId, (w) => w.resolve(typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue));
  });
  events.on('failed', ({ jobId, failedReason }) => {
    settle(jobId, (w) => w.reject(new Error(failedReason)));
  });
  // QueueEvents reconnects by itself; each waiter's own timeout reports a lost result.
  events.on('error', () => {});

  connections.replies.on('message', (from: string, message: string) => {
    if (from !== channel) return;
    let reply: { jobId?: unknown; result?: unknown };
    try {
      reply = JSON.parse(message);
    } catch {
      // Not ours to answer: the same result still arrives on the events stream.
      return;
    }
    if (typeof reply.jobId === 'string') settle(reply.jobId, (w) => w.resolve(reply.result));
  });

  return {
    /** Put this in a job's `replyTo` to get its result on the direct path. */
    replyTo,
    async ready(): Promise<void> {
      await Promise.all([events.waitUntilReady(), connections.replies.subscribe(channel)]);
    },
    /** Returns a promise for the job's return value; call before the job is added. */
    expect<T>(jobId: string, timeoutMs: number): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(
          () => settle(jobId, (w) => w.reject(new WaitTimeoutError(jobId, timeoutMs))),
          timeoutMs,
        );
        waiting.set(jobId, { resolve: resolve as (v: unknown) => void, reject, timer });
      });
    },
    cancel(jobId: string): void {
      settle(jobId, (w) => w.reject(new Error('cancelled')));
    },
    async close(): Promise<void> {
      for (const id of [...waiting.keys()]) settle(id, (w) => w.reject(new Error('Shutting down.')));
      // Redis is away: the subscription ends with the connection, which the caller closes.
      await connections.replies.unsubscribe(channel).catch(() => {});
      await closeQueueEvents(events);
    },
  };
}

/**
 * BullMQ's close QUITs its own (duplicated) blocking client and waits for the reply, which
 * never comes while Redis is away: then that client is dropped and the close not awaited. A
 * client that never connected (the role started and stopped while Redis was away) has nothing
 * to drop.
 */
export async function closeQueueEvents(events: QueueEvents): Promise<void> {
  const client = await (
    events as unknown as { backend: { client: Promise<{ status: string; disconnect(): void }> } }
  ).backend.client.catch(() => undefined);
  if (client?.status === 'ready') return events.close();
  client?.disconnect();
  // Closing a stream whose connection is already gone: nothing left to release.
  void events.close().catch(() => {});
}
export type ResultWaiter = ReturnType<typeof createResultWaiter>;
