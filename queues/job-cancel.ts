import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';

/*
 * Cancelling a job that may be queued or running, for any queue whose jobs can be stopped
 * (exec runs, function invocations). A queued job is removed at once: BullMQ refuses to remove
 * a job a worker holds (its lock), so removal and pick-up cannot both win. A running one is told
 * through a channel every worker of that kind listens on, and a flag catches what the channel
 * cannot: a worker whose subscriber was away, or a job run again (a retry, a stalled job taken
 * over by another worker) long after the message was heard.
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
    /**
     * `rerun`: the job has been started before (BullMQ's attemptsStarted > 1): a retry, or a
     * stalled job another worker took over. Its cancel may have been heard by a worker now dead,
     * or longer ago than is kept here, so its flag is read whatever the channel's state.
     */
    async begin(id: string, { rerun = false }: { rerun?: boolean } = {}): Promise<AbortSignal> {
      const controller = new AbortController();
      running.set(id, controller);
      if (heard.delete(id)) controller.abort();
      else if ((rerun || !options.listening?.()) && (await cancelRequested(redis, prefix, kind, id)))
        controller.abort();
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
 * Tracks a subscriber for `RunningJobsOptions.listening`: listening once `subscribe` has
 * answered, not from the moment the connection drops, and again once it has answered on the
 * new connection (ioredis says `ready` before it subscribes again by itself, so this subscribes
 * itself; messages published in between are lost, hence the flag). `subscribed` is the first.
 */
export function cancelListener(subscriber: Redis, subscribe: () => Promise<unknown>) {
  let listening = false;
  let generation = 0;
  const attempt = (): Promise<unknown> => {
    const mine = ++generation;
    return subscribe().then((value) => {
      // A drop (or a newer attempt) since: this answer is about a connection gone.
      if (mine === generation) listening = true;
      return value;
    });
  };
  const away = () => {
    listening = false;
    generation++;
  };
  subscriber.on('close', away);
  subscriber.on('reconnecting', away);
  let started = false;
  subscriber.on('ready', () => {
    // Away again before it answers: the next `ready` tries again.
    if (started && !listening) attempt().catch(() => {});
  });
  const subscribed = attempt();
  started = true;
  return { listening: () => listening && subscriber.status === 'ready', subscribed };
}
