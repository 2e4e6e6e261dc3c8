import type { Logger } from 'pino';
import type { Config } from '../core/config.ts';
import { createBatchFolders } from '../processors/batches/folder.ts';
import { createNarrator } from '../processors/batches/narrative.ts';
import { loadBatchSettings } from '../processors/batches/settings.ts';
import { createBatchDiscovery, createBatchesProcessor } from '../processors/batches.ts';
import type { EnqueueBulk } from '../queues/enqueue.ts';

/** Batches: the folders (Inputs/Outputs/state), the tick's discovery and the processor. */
export function wireBatches(deps: { config: Config; logger: Logger; enqueueBulk: EnqueueBulk }) {
  const log = (line: string) => deps.logger.info(line);
  const folders = createBatchFolders(loadBatchSettings(deps.config.batches));
  const narrator = createNarrator(deps.config.llm, (line) => deps.logger.warn(line));
  return {
    folders,
    discovery: createBatchDiscovery({ folders, enqueueBulk: deps.enqueueBulk, log }),
    processor: createBatchesProcessor({ folders, narrator, log }),
  };
}
