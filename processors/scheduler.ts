import type { Job } from 'bullmq';
import { coerceError } from '../core/errors.ts';
import type { TickSummary } from '../queues/schemas/scheduler.ts';

/**
 * Work the scheduler tick does. Handlers must be idempotent: two ticks may race (two
 * scheduler processes, a manual tick during a timed one) and a tick may be re-run.
 */
export interface TickHandler {
  name: string;
  run(context: { tickId: string; reason: string }): Promise<unknown>;
}

/** Runs every handler; one failing does not stop the others. */
export async function runTick(
  handlers: readonly TickHandler[],
  context: { tickId: string; reason: string },
): Promise<TickSummary> {
  const summary: TickSummary = { handlers: {} };
  await Promise.all(
    handlers.map(async (handler) => {
      try {
        summary.handlers[handler.name] = { ok: true, result: await handler.run(context) };
      } catch (err) {
        summary.handlers[handler.name] = { ok: false, error: coerceError(err).message };
      }
    }),
  );
  return summary;
}

/** The `scheduler` queue's processor: a tick with a failed handler fails, so it shows in Bull Board. */
export function createSchedulerProcessor(handlers: readonly TickHandler[]) {
  return async (job: Job<{ reason?: string }>): Promise<TickSummary> => {
    const summary = await runTick(handlers, {
      tickId: String(job.id),
      reason: job.data.reason ?? 'interval',
    });
    const failed = Object.entries(summary.handlers).filter(([, r]) => !r.ok);
    if (failed.length > 0) {
      throw new Error(`Tick handlers failed: ${failed.map(([name, r]) => `${name}: ${r.error}`).join('; ')}`);
    }
    await job.updateProgress(100);
    return summary;
  };
}
