import { QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { WaitTimeoutError } from '../core/errors.ts';

/**
 * Waits for jobs of one queue to finish, for many callers at once, over one QueueEvents stream
 * (BullMQ's job.waitUntilFinished adds listeners and a state read per call). Register before
 * adding the job, so a fast job cannot finish unseen.
 */
export function createResultWaiter(queue: string, connection: Redis, prefix: string) {
  const events = new QueueEvents(queue, { connection, prefix });
  const waiting = new Map<
    string,
    { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();
  const settle = (
    jobId: string,
    fn: (w: { resolve: (v: unknown) => void; reject: (e: Error) => void }) => void,
  ) => {
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

  return {
    ready: () => events.waitUntilReady(),
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
      // BullMQ's close QUITs its own (duplicated) blocking client and waits for the reply, which
      // never comes while Redis is away: then that client is dropped and the close not awaited.
      const client = await (
        events as unknown as { backend: { client: Promise<{ status: string; disconnect(): void }> } }
      ).backend.client;
      if (client.status === 'ready') return events.close();
      client.disconnect();
      // Closing a stream whose connection is already gone: nothing left to release.
      void events.close().catch(() => {});
    },
  };
}
export type ResultWaiter = ReturnType<typeof createResultWaiter>;
