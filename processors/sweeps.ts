import { type Job, UnrecoverableError } from 'bullmq';
import type { SweepPayload, SweepResult } from '../queues/schemas/sweeps.ts';
import type { FunctionStore } from './functions/function-store.ts';
import { type RunInvocation, resized } from './functions/invocation-runner.ts';
import { DEFAULT_SWEEP_RUNS, type SweepPoint, summarisePoint, sweepResult } from './functions/power-sweep.ts';
import type { TuningHistory } from './functions/tuning-history.ts';

export const DEFAULT_SWEEP_SIZES = [128, 256, 512, 1024, 1769];

/**
 * AWS Lambda Power Tuning as a job: the same event at each memory size, on this worker's warm
 * pool, one call at a time (so calls do not compete for the CPU they are measuring). Per size a
 * discarded warm-up call after the resize, then the measured runs; progress after every call;
 * the result is saved as the function's last sweep (its chart) and returned.
 */
export function createSweepsProcessor(deps: {
  store: FunctionStore;
  history: TuningHistory;
  run: RunInvocation;
  /** True once the process is shutting down: a sweep stops between calls instead of holding it up. */
  closing?: () => boolean;
}) {
  return async (job: Job<SweepPayload>): Promise<SweepResult> => {
    const { functionName, event = {} } = job.data;
    const stored = await deps.store.getVersion(functionName, job.data.version);
    if (!stored)
      throw new UnrecoverableError(`Function ${functionName} does not exist (deleted meanwhile?).`);
    const sizes = [...new Set(job.data.memorySizes ?? DEFAULT_SWEEP_SIZES)].sort((a, b) => a - b);
    const runs = job.data.invocations ?? DEFAULT_SWEEP_RUNS;
    const total = sizes.length * (runs + 1);
    let done = 0;
    const call = async (memoryMb: number, i: number) => {
      if (deps.closing?.())
        throw new UnrecoverableError('The sweep was interrupted by a shutdown; ask for it again.');
      const record = resized(stored, memoryMb);
      const out = await deps.run(record, stored, {
        requestId: `${job.id}-m${memoryMb}-${i}`,
        event,
        timeoutMs: record.timeoutMs,
      });
      done++;
      // Progress is advisory: a lost update must not fail the sweep it describes.
      await job.updateProgress(Math.round((done / total) * 100)).catch(() => {});
      return out.status === 'SUCCESS' ? out.durationMs : undefined;
    };
    const points: SweepPoint[] = [];
    for (const memoryMb of sizes) {
      // The first call after a resize pays for the new container; it is not the size's figure.
      await call(memoryMb, 0);
      const durations: number[] = [];
      let failures = 0;
      for (let i = 1; i <= runs; i++) {
        const duration = await call(memoryMb, i);
        if (duration === undefined) failures++;
        else durations.push(duration);
      }
      points.push(summarisePoint(memoryMb, durations, failures));
    }
    const result = sweepResult(functionName, job.data.strategy ?? 'balanced', points);
    await deps.history.saveSweep(functionName, result);
    return result;
  };
}
