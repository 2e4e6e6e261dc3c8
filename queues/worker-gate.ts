import type { Job, Worker } from 'bullmq';
import type { Desired, NodeState } from '../core/node-agent/protocol.ts';

type Want = 'active' | 'drain' | 'ineligible';

export interface WorkerGateOptions {
  /** Called once each time a drain or an ineligibility has no job left running (state drained). */
  onIdle?: () => void;
  /** A pause or resume that failed (the worker closed under it, Redis went away). */
  onError?: (err: unknown) => void;
}

export interface WorkerGate {
  /** Applies the control plane's wish: drain or ineligible stop new jobs; eligible takes them again. */
  apply(desired: Desired): void;
  /** What heartbeats report: active, draining (jobs still running), drained, or ineligible. */
  state(): NodeState;
  /** Jobs this process is running, per queue. */
  activeJobs(): Record<string, number>;
  /** Waits for the pause or resume under way (tests, shutdown). */
  settled(): Promise<void>;
  /** Stops listening to the workers' events. */
  close(): void;
}

/**
 * Drain and eligibility for the BullMQ workers of one process.
 *
 * Stopping uses `worker.pause()` without `doNotWaitActive`, on purpose: with `pause(true)` the
 * blocking fetch already waiting in Redis stays there, and a job added within its timeout
 * (drainDelay, 5 s) is still taken by the "paused" worker (the same as Bull issue #1532).
 * Plain `pause()` cuts that blocking connection first, then resolves when the active jobs have
 * finished: exactly "drained". Transitions run one after another, so an "eligible again" that
 * arrives mid-drain resumes once the drain has ended: resuming while `pause()` still waits
 * would leave it waiting until close, and reconnecting a closing worker.
 */
export function createWorkerGate(workers: readonly Worker[], options: WorkerGateOptions = {}): WorkerGate {
  let want: Want = 'active';
  let applied: Want = 'active';
  let idle = false;
  let chain: Promise<void> = Promise.resolve();
  const running = new Map<Worker, Set<string>>(workers.map((w) => [w, new Set<string>()]));

  const listeners = workers.map((worker) => {
    const ids = running.get(worker) as Set<string>;
    const onActive = (job: Job) => ids.add(String(job.id));
    const onDone = (job: Job | undefined) => {
      if (job) ids.delete(String(job.id));
    };
    worker.on('active', onActive);
    worker.on('completed', onDone);
    worker.on('failed', onDone);
    return () => {
      worker.off('active', onActive);
      worker.off('completed', onDone);
      worker.off('failed', onDone);
    };
  });

  const transition = async () => {
    const target = want;
    if ((target === 'active') === (applied === 'active')) {
      applied = target;
      return;
    }
    if (target === 'active') {
      idle = false;
      await Promise.all(workers.map((w) => w.resume()));
      applied = 'active';
      return;
    }
    applied = target;
    await Promise.all(workers.map((w) => w.pause()));
    // Every worker's main loop has ended: nothing runs here any more.
    for (const ids of running.values()) ids.clear();
    if (want !== 'active') {
      idle = true;
      options.onIdle?.();
    }
  };

  return {
    apply(desired) {
      const next: Want = desired.drain ? 'drain' : desired.eligible ? 'active' : 'ineligible';
      if (next === want) return;
      want = next;
      chain = chain.then(transition).catch((err) => options.onError?.(err));
    },
    state() {
      if (want === 'active') return 'active';
      if (want === 'ineligible') return 'ineligible';
      return idle ? 'drained' : 'draining';
    },
    activeJobs() {
      const counts: Record<string, number> = {};
      for (const [worker, ids] of running) counts[worker.name] = (counts[worker.name] ?? 0) + ids.size;
      return counts;
    },
    settled: () => chain,
    close() {
      for (const off of listeners) off();
    },
  };
}
