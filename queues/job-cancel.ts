import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';

/*
 * Cancelling a job that may be queued or running, for any queue whose jobs can be stopped
 * (exec runs, function invocations). A queued job is removed at once: BullMQ refuses to remove
 * a job a worker holds (its lock), so removal and pick-up cannot both win. A running one is told
 * through a channel every worker of that kind listens on, and a flag, read when a job starts,
 * catches the worker that picked it up in between.
 *
 * `kind` names the family; its keys are `<prefix>:<kind>:cancel` (channel) and
 * `<prefix>:<kind>:cancel:<id>` (flag). A kind must not be a queue's name unless its job ids
 * can never be `lock`, `logs`, … (the flag of id `lock` would be job `cancel`'s lock key).
 */

export const cancelChannel = (prefix: string, kind: string) => `${prefix}:${kind}:cancel`;
export const cancelFlagKey = (prefix: string, kind: string, id: string) => `${prefix}:${kind}:cancel:${id}`;

export interface CancelTarget {
  queue: Queue;
  redis: Redis;
  prefix: string;
  kind: string;
  /** How long the flag lasts: as long as finished jobs are kept. */
  keepSeconds: number;
}

export type CancelOutcome =
  /** It was queued and its job is gone: it will never run. */
  | { outcome: 'removed'; job: Job }
  /** A worker runs it (or is picking it up) and has been told to stop. */
  | { outcome: 'signalled'; job: Job }
  | { outcome: 'finished'; job: Job }
  | { outcome: 'missing' };

export async function cancelJob(target: CancelTarget, id: string): Promise<CancelOutcome> {
  const { queue, redis, prefix, kind } = target;
  const job = await queue.getJob(id);
  if (!job) return { outcome: 'missing' };
  const state = await job.getState();
  if (state === 'completed' || state === 'failed') return { outcome: 'finished', job };
  await redis.set(cancelFlagKey(prefix, kind, id), '1', 'EX', target.keepSeconds);
  if (state !== 'active') {
    const removed = await job.remove().then(
      () => true,
      // A worker took it between the two calls: it sees the flag, or the channel's message.
      () => false,
    );
    if (removed) return { outcome: 'removed', job };
  }
  await redis.publish(cancelChannel(prefix, kind), id);
  return { outcome: 'signalled', job };
}

/** Is a cancel flag set for this job (read as a job starts, and by state readers)? */
export async function cancelRequested(redis: Redis, prefix: string, kind: string, id: string) {
  return (await redis.exists(cancelFlagKey(prefix, kind, id))) === 1;
}

/** How long a cancel heard for a job not running here is kept for a `begin` that may follow. */
const HEARD_MS = 60_000;
/** At most this many such cancels are kept (every worker hears every cancel). */
const HEARD_MAX = 10_000;

export interface RunningJobsOptions {
  /**
   * Whether this process's cancel subscriber is connected and subscribed (`cancelListener`). While
   * it is, a cancel for a job this process picks up cannot go unheard, and `begin` reads no flag.
   */
  listening?: () => boolean;
}

/**
 * Worker side: one AbortController per job this process runs. `cancel` is called by whoever
 * hears the channel; a cancel for a job not running here is kept a minute, because the job may
 * be one this process has just picked up and not yet begun (removal failed, so the route
 * published). `begin` returns the signal to run with: aborted when such a cancel was heard, or,
 * when this process may have missed messages (its subscriber away), when the flag is set.
 * Reading the flag before every job cost a Redis round trip on every call's path.
 */
export function createRunningJobs(
  redis: Redis,
  prefix: string,
  kind: string,
  options: RunningJobsOptions = {},
) {
  const running = new Map<string, AbortController>();
  const heard = new Map<string, number>();
  const forgetOld = (now: number) => {
    for (const [id, at] of heard) {
      if (now - at < HEARD_MS && heard.size <= HEARD_MAX) break;
      heard.delete(id);
    }
  };
  return {
    async begin(id: string): Promise<AbortSignal> {
      const controller = new AbortController();
      running.set(id, controller);
      if (heard.delete(id)) controller.abort();
      else if (!options.listening?.() && (await cancelRequested(redis, prefix, kind, id))) controller.abort();
      return controller.signal;
    },
    end(id: string): void {
      running.delete(id);
    },
    /** Stops the job if this process runs it; answers whether it did. */
    cancel(id: string): boolean {
      const controller = running.get(id);
      if (controller) {
        controller.abort();
        return true;
      }
      const now = Date.now();
      heard.delete(id);
      heard.set(id, now);
      forgetOld(now);
      return false;
    },
    size: () => running.size,
  };
}
export type RunningJobs = ReturnType<typeof createRunningJobs>;

/**
 * Tracks a subscriber connection for `RunningJobsOptions.listening`: listening once subscribed,
 * not from the moment the connection drops, and again a second after it is back (ioredis
 * subscribes again on reconnect; messages published in between are lost, hence the flag).
 */
export function cancelListener(subscriber: Redis, subscribed: Promise<unknown>) {
  let since = Number.POSITIVE_INFINITY;
  void subscribed.then(
    () => {
      since = Math.min(since, Date.now());
    },
    () => {},
  );
  const away = () => {
    since = Number.POSITIVE_INFINITY;
  };
  subscriber.on('close', away);
  subscriber.on('reconnecting', away);
  subscriber.on('ready', () => {
    if (since === Number.POSITIVE_INFINITY) since = Date.now() + 1000;
  });
  return () => subscriber.status === 'ready' && Date.now() >= since;
}
