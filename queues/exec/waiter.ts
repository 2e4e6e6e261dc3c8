import { type Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { closeQueueEvents } from '../queue-events.ts';
import type { ExecResponse } from '../schemas/exec.ts';
import { describeExecution } from './state.ts';

interface Waiting {
  resolve: (response: ExecResponse | undefined) => void;
  timer: NodeJS.Timeout;
}

/**
 * Waits for executions to end, for many callers at once (`POST /exec?wait=true`, the bridge):
 * one QueueEvents stream for the whole process. An execution ends by completing, failing, or
 * being removed while queued (cancelled): each answers with the Exec Agent response. Several
 * callers may wait for one execution (a request published twice); each gets the answer.
 */
export function createExecWaiter(queue: Queue, connection: Redis, redis: Redis, prefix: string) {
  const events = new QueueEvents(queue.name, { connection, prefix });
  const waiting = new Map<string, Set<Waiting>>();

  const settle = async (id: string) => {
    const set = waiting.get(id);
    if (!set) return;
    const state = await describeExecution(queue, redis, prefix, id).catch(() => undefined);
    if (state?.state !== 'finished') return;
    waiting.delete(id);
    for (const w of set) {
      clearTimeout(w.timer);
      w.resolve(state.response);
    }
  };
  // The stream says that something ended; the job itself says how (one reading for every way).
  for (const event of ['completed', 'failed', 'removed'] as const) {
    events.on(event, ({ jobId }: { jobId: string }) => void settle(jobId));
  }
  // QueueEvents reconnects by itself; a lost end is caught by each waiter's timeout.
  events.on('error', () => {});

  return {
    ready: () => events.waitUntilReady(),
    /**
     * The execution's response when it ends within timeoutMs, else undefined. Call before the
     * job is added; an execution that has already ended answers at once.
     */
    expect(id: string, timeoutMs: number): Promise<ExecResponse | undefined> {
      const done = new Promise<ExecResponse | undefined>((resolve) => {
        const entry: Waiting = {
          resolve,
          timer: setTimeout(() => {
            waiting.get(id)?.delete(entry);
            if (waiting.get(id)?.size === 0) waiting.delete(id);
            resolve(undefined);
          }, timeoutMs),
        };
        const set = waiting.get(id) ?? new Set();
        set.add(entry);
        waiting.set(id, set);
      });
      return done;
    },
    /** For a job that may have ended before expect() was called (a duplicate request). */
    check: (id: string) => settle(id),
    /** Stops waiting for an execution that will not come (its job was never added). */
    forget(id: string): void {
      for (const w of waiting.get(id) ?? []) {
        clearTimeout(w.timer);
        w.resolve(undefined);
      }
      waiting.delete(id);
    },
    async close(): Promise<void> {
      for (const [, set] of waiting) {
        for (const w of set) {
          clearTimeout(w.timer);
          w.resolve(undefined);
        }
      }
      waiting.clear();
      await closeQueueEvents(events);
    },
  };
}
export type ExecWaiter = ReturnType<typeof createExecWaiter>;
