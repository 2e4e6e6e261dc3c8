import type { Redis } from 'ioredis';
import { WaitTimeoutError } from '../core/errors.ts';
import { newReplyId, replyChannel } from './reply-path.ts';

/**
 * Where a job stands, read from Redis when its reply may have been lost. `missing` settles
 * nothing: a job not (yet, or any longer) in the queue may be one trimmed from the kept history,
 * or one cancelled whose result is being written; the call's own timeout answers (504, pending).
 */
export type JobOutcome =
  | { state: 'completed'; value: unknown }
  | { state: 'failed'; reason: string }
  | { state: 'pending' }
  | { state: 'missing' };

interface Waiting {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  /** When to read the job itself if no reply has come (performance.now()). */
  checkAt: number;
  checkEveryMs: number;
}

export interface ResultWaiterOptions {
  /** Reads a job's outcome: the backstop for a reply that never came. */
  lookup: (jobId: string) => Promise<JobOutcome>;
  /** First backstop read this long after a call is sent, then at doubling intervals up to 8×. Default 1000. */
  checkAfterMs?: number;
}

/**
 * A gateway's waiting sync calls. The answer comes on this gateway's own reply channel
 * (queues/reply-path.ts): the worker publishes the result, or the final failure, the moment it
 * has it. Pub/sub is at most once, so a reply can be lost (this connection was away, a publish
 * failed, a worker died and BullMQ failed the job as stalled): a call with no reply after
 * `checkAfterMs` reads its job, again at growing intervals, and at once for every call when the
 * connection comes back. This replaces a QueueEvents stream, which woke every gateway for
 * every event of every job (added, waiting, active, progress, completed, drained): four to six
 * reads per call, each parsed, for answers the reply channel had already given.
 */
export function createResultWaiter(
  connections: { replies: Redis },
  prefix: string,
  options: ResultWaiterOptions,
) {
  const replyTo = newReplyId();
  const channel = replyChannel(prefix, replyTo);
  const checkAfterMs = options.checkAfterMs ?? 1000;
  const waiting = new Map<string, Waiting>();
  const settle = (jobId: string, fn: (w: Waiting) => void) => {
    const w = waiting.get(jobId);
    if (!w) return;
    waiting.delete(jobId);
    clearTimeout(w.timer);
    fn(w);
  };
  const answer = (jobId: string, outcome: JobOutcome) => {
    if (outcome.state === 'completed') settle(jobId, (w) => w.resolve(outcome.value));
    else if (outcome.state === 'failed') settle(jobId, (w) => w.reject(new Error(outcome.reason)));
  };
  const { replies } = connections;
  const receive = (message: string) => {
    let reply: { jobId?: unknown; result?: unknown; error?: unknown };
    try {
      reply = JSON.parse(message);
    } catch {
      // Not ours to answer: the backstop reads the job itself.
      return;
    }
    if (typeof reply.jobId !== 'string') return;
    if (typeof reply.error === 'string') answer(reply.jobId, { state: 'failed', reason: reply.error });
    else answer(reply.jobId, { state: 'completed', value: reply.result });
  };
  replies.on('message', (from: string, message: string) => {
    if (from === channel) receive(message);
  });

  let checking = false;
  // A read of every call asked for while another read was running: done right after it.
  let allAgain = false;
  const check = async (all: boolean): Promise<void> => {
    if (checking) {
      allAgain ||= all;
      return;
    }
    checking = true;
    try {
      const now = performance.now();
      const due = [...waiting].filter(([, w]) => all || w.checkAt <= now);
      // A reconnect's read is extra: it does not push a call's next scheduled read further out.
      if (!all)
        for (const [, w] of due) {
          w.checkEveryMs = Math.min(w.checkEveryMs * 2, checkAfterMs * 8);
          w.checkAt = now + w.checkEveryMs;
        }
      await Promise.all(
        due.map(([jobId]) =>
          options.lookup(jobId).then(
            (outcome) => answer(jobId, outcome),
            // Redis is away: the next round (or the reconnect) reads again.
            () => {},
          ),
        ),
      );
    } finally {
      checking = false;
    }
    if (allAgain) {
      allAgain = false;
      await check(true);
    }
  };
  const sweep = setInterval(() => void check(false), Math.max(50, checkAfterMs / 4));
  sweep.unref();
  // Messages published while this connection was away are lost: once subscribed again (ioredis
  // says `ready` before it subscribes again, so this subscribes itself), read every waiting call.
  let connectedOnce = false;
  let closed = false;
  const onReady = () => {
    if (!connectedOnce || closed) return;
    replies.subscribe(channel).then(
      () => check(true),
      // Away again: the next `ready` tries again.
      () => {},
    );
  };
  replies.on('ready', onReady);

  return {
    /** Put this in a job's `replyTo` to get its result on the direct path. */
    replyTo,
    /** A reply handed over by a worker in this same process (queues/reply-path.ts LocalGateway). */
    receive,
    async ready(): Promise<void> {
      await replies.subscribe(channel);
      connectedOnce = true;
    },
    /** Returns a promise for the job's return value; call before the job is added. */
    expect<T>(jobId: string, timeoutMs: number): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(
          () => settle(jobId, (w) => w.reject(new WaitTimeoutError(jobId, timeoutMs))),
          timeoutMs,
        );
        waiting.set(jobId, {
          resolve: resolve as (v: unknown) => void,
          reject,
          timer,
          checkAt: performance.now() + checkAfterMs,
          checkEveryMs: checkAfterMs,
        });
      });
    },
    cancel(jobId: string): void {
      settle(jobId, (w) => w.reject(new Error('cancelled')));
    },
    /** Calls waiting now (a gauge, and tests). */
    size: () => waiting.size,
    async close(): Promise<void> {
      closed = true;
      clearInterval(sweep);
      replies.off('ready', onReady);
      for (const id of [...waiting.keys()]) settle(id, (w) => w.reject(new Error('Shutting down.')));
      // Redis is away: the subscription ends with the connection, which the caller closes.
      await replies.unsubscribe(channel).catch(() => {});
    },
  };
}
export type ResultWaiter = ReturnType<typeof createResultWaiter>;
