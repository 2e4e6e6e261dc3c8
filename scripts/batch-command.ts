import type { Config } from '../core/config.ts';
import { BatchLockedError, coerceError, ResultWriteError } from '../core/errors.ts';
import { createBatchFolders } from '../processors/batches/folder.ts';
import { createNarrator } from '../processors/batches/narrative.ts';
import { runBatch } from '../processors/batches/run-batch.ts';
import { loadBatchSettings } from '../processors/batches/settings.ts';
import { createBatchDiscovery } from '../processors/batches.ts';

/**
 * `dockhand batch run-once`: the old runner's single pass, in this process and without Redis:
 * the newest pending batch is scored. Exit 0 done or nothing pending, 1 engine failure,
 * 2 result not writable — the codes existing cron jobs check.
 */
export async function batchRunOnce(
  config: Config,
  log: (line: string) => void = (l) => console.log(l),
): Promise<number> {
  const folders = createBatchFolders(loadBatchSettings({ ...config.batches, perTick: 1 }));
  const stamp = (line: string) => log(`${new Date().toISOString()} ${line}`);
  let chosen: string | undefined;
  // The discovery's choice and log lines, with "enqueue" meaning "run here".
  await createBatchDiscovery({
    folders,
    log: stamp,
    enqueueBulk: (async (_queue: string, items: Array<{ data: { name: string } }>) => {
      chosen = items[0]?.data.name;
      return [];
    }) as never,
  }).run({ tickId: 'run-once', reason: 'cli' });
  if (!chosen) {
    stamp('[runner] nothing pending');
    return 0;
  }
  try {
    const outcome = await runBatch(
      { folders, narrator: createNarrator(config.llm, stamp), log: stamp },
      chosen,
    );
    stamp(`[runner] ${chosen}: ${outcome.skipped ?? `wrote ${outcome.resultPath}`}`);
    return 0;
  } catch (err) {
    if (err instanceof BatchLockedError) {
      stamp(`skip ${chosen}: locked`);
      return 0;
    }
    stamp(`[runner] ${chosen} failed: ${coerceError(err).message}`);
    return err instanceof ResultWriteError ? 2 : 1;
  }
}
