import { type Job, UnrecoverableError } from 'bullmq';
import { BatchLockedError, BatchMissingError } from '../core/errors.ts';
import type { EnqueueBulk } from '../queues/enqueue.ts';
import type { BatchJobPayload, BatchOutcome } from '../queues/schemas/batches.ts';
import type { BatchFolders } from './batches/folder.ts';
import type { Narrator } from './batches/narrative.ts';
import { runBatch } from './batches/run-batch.ts';
import type { TickHandler } from './scheduler.ts';

export interface BatchesDeps {
  folders: BatchFolders;
  narrator?: Narrator;
  log: (line: string) => void;
}

/** Job id of a batch: its absolute path, so a batch is on the queue at most once. */
export const batchJobId = (absolutePath: string) => absolutePath.replaceAll(':', '%3A');

/** Scores one batch. A batch locked by another runner is retried later (BullMQ backoff). */
export function createBatchesProcessor(deps: BatchesDeps) {
  return async (job: Job<BatchJobPayload>): Promise<BatchOutcome> => {
    await job.updateProgress(5);
    try {
      const outcome = await runBatch(deps, job.data.name);
      await job.updateProgress(100);
      return outcome;
    } catch (err) {
      if (err instanceof BatchLockedError) throw err;
      // A missing folder will not appear by retrying.
      if (err instanceof BatchMissingError) throw new UnrecoverableError(err.message);
      throw err;
    }
  };
}

/**
 * The tick's batch discovery, with the old runner's log lines. Enqueues pending batches newest
 * first (BATCHES_PER_TICK of them; 0 = all), each with its path as job id: two racing ticks,
 * or a tick racing POST /batches, add it once.
 */
export function createBatchDiscovery(deps: {
  folders: BatchFolders;
  enqueueBulk: EnqueueBulk;
  log: (line: string) => void;
}): TickHandler {
  return {
    name: 'batches',
    async run() {
      const batches = await deps.folders.list();
      deps.log(`[runner] subdirs: ${JSON.stringify(batches.map((b) => b.name))}`);
      const pending = [];
      for (const b of batches) {
        if (b.state === 'pending') pending.push(b);
        else deps.log(`skip ${b.name}: ${b.state === 'processed' ? 'already processed' : b.state}`);
      }
      pending.sort((a, b) => b.mtimeMs - a.mtimeMs);
      deps.log(`pending candidates: ${JSON.stringify(pending.map((b) => b.name))}`);
      const perTick = deps.folders.settings.perTick;
      const chosen = perTick > 0 ? pending.slice(0, perTick) : pending;
      // One round trip, in newest-first order: a thousand dropped folders are one addBulk.
      await deps.enqueueBulk(
        'batches',
        chosen.map((b) => ({ data: { name: b.name }, options: { jobId: batchJobId(b.path) } })),
      );
      return { enqueued: chosen.map((b) => b.name), pending: pending.length };
    },
  };
}
