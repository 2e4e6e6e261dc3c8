// How the queue benches (bench:jobs, bench:scale) time a job: from hand-in to its `completed`
// event, seen by the bench over QueueEvents, against a loopback HTTP target of their own.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { QueueEvents } from 'bullmq';
import { coerceError, errorCode } from '../core/errors.ts';
import { defer, type Figures, failure, figures } from './bench-kit.ts';

/** How long the last jobs may take to finish once every job is handed in. */
const DRAIN_MS = 120_000;

/** A loopback HTTP server answering `ok`, as a child process; its URL. Stopped at the end. */
export async function startTarget(): Promise<string> {
  const code = `require('http').createServer((q,s)=>s.end('ok')).listen(0,'127.0.0.1',function(){console.log(this.address().port)})`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  defer(() => {
    if (child.exitCode === null) child.kill();
  });
  const [chunk] = (await once(child.stdout, 'data')) as [Buffer];
  return `http://127.0.0.1:${chunk.toString().trim()}/`;
}

/** A submission answers the job's id, or why it was not accepted. */
export type Submit = () => Promise<{ id: string } | { failed: string }>;

/**
 * Submits `jobs` jobs from `inFlight` client loops and times each from hand-in to its
 * `completed` event. Open loop: a client hands in its next job as soon as the last is
 * accepted (throughput, queueing included). Closed loop: it waits for the job to finish
 * first (latency with no backlog).
 */
export async function measure(
  events: QueueEvents,
  submit: Submit,
  jobs: number,
  inFlight: number,
  closedLoop = false,
): Promise<Figures> {
  const finished = new Map<string, { at: number; failed?: string }>();
  const waiters = new Map<string, () => void>();
  const settle = (jobId: string, failed?: string) => {
    finished.set(jobId, { at: performance.now(), failed });
    waiters.get(jobId)?.();
  };
  const onCompleted = ({ jobId }: { jobId: string }) => settle(jobId);
  const onFailed = ({ jobId, failedReason }: { jobId: string; failedReason: string }) =>
    settle(jobId, failure('job failed', failedReason));
  events.on('completed', onCompleted);
  events.on('failed', onFailed);
  const outcome = (id: string) =>
    new Promise<{ at: number; failed?: string }>((resolve) => {
      const done = finished.get(id);
      if (done) return resolve(done);
      waiters.set(id, () => resolve(finished.get(id) as { at: number; failed?: string }));
    });
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  const fail = (cause: string) => {
    failures[cause] = (failures[cause] ?? 0) + 1;
  };
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  let last = t0;
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next++ < jobs) {
        const before = performance.now();
        let accepted: Awaited<ReturnType<Submit>>;
        try {
          accepted = await submit();
        } catch (err) {
          accepted = { failed: errorCode(err) ?? coerceError(err).name };
        }
        if ('failed' in accepted) {
          fail(accepted.failed);
          continue;
        }
        const done = outcome(accepted.id).then(({ at, failed }) => {
          if (failed) return fail(failed);
          latencies.push(at - before);
          last = Math.max(last, at);
        });
        pending.push(done);
        if (closedLoop) await done;
      }
    }),
  );
  let timer: NodeJS.Timeout | undefined;
  const drained = await Promise.race([
    Promise.all(pending).then(() => true),
    new Promise<boolean>((r) => {
      timer = setTimeout(() => r(false), DRAIN_MS);
    }),
  ]);
  clearTimeout(timer);
  events.off('completed', onCompleted);
  events.off('failed', onFailed);
  const settled = latencies.length + Object.values(failures).reduce((a, b) => a + b, 0);
  if (!drained) failures[`no result within ${DRAIN_MS / 1000} s`] = jobs - settled;
  return figures(latencies, (last - t0) / 1000, jobs, failures);
}
