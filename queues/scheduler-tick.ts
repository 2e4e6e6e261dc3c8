import type { Queue } from 'bullmq';

/** Fixed so that every scheduler process, and every restart, upserts the same one. */
export const TICK_SCHEDULER_ID = 'dockhand-tick';

/**
 * Makes the repeatable tick exist exactly once, every `intervalSeconds`, and makes sure a
 * tick runs now: on a first start BullMQ's `every` scheduler fires at once; on a restart its
 * next run may be minutes away, so a startup tick is added, deduplicated so that several
 * scheduler processes starting together add one.
 */
export async function ensureTickScheduler(queue: Queue, intervalSeconds: number): Promise<void> {
  const next = await queue.upsertJobScheduler(
    TICK_SCHEDULER_ID,
    { every: intervalSeconds * 1000 },
    { name: 'tick', data: { reason: 'interval' } },
  );
  const state = next ? await next.getState() : 'unknown';
  if (state !== 'waiting' && state !== 'active') {
    await queue.add(
      'tick',
      { reason: 'startup' },
      { deduplication: { id: 'startup-tick', ttl: Math.min(intervalSeconds, 60) * 1000 } },
    );
  }
}
