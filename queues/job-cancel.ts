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

/**
 * Worker side: one AbortController per job this process runs. `begin` reads the flag (a cancel
 * that came while the job was picked up) and returns the signal to run with; `cancel` is called
 * by whoever hears the channel.
 */
export function createRunningJobs(redis: Redis, prefix: string, kind: string) {
  const running = new Map<string, AbortController>();
  return {
    async begin(id: string): Promise<AbortSignal> {
      const controller = new AbortController();
      running.set(id, controller);
      if (await cancelRequested(redis, prefix, kind, id)) controller.abort();
      return controller.signal;
    },
    end(id: string): void {
      running.delete(id);
    },
    /** Stops the job if this process runs it; answers whether it did. */
    cancel(id: string): boolean {
      const controller = running.get(id);
      controller?.abort();
      return controller !== undefined;
    },
    size: () => running.size,
  };
}
export type RunningJobs = ReturnType<typeof createRunningJobs>;
