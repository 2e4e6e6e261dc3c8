import { METRIC_BY_FILE, METRICS } from './catalog.ts';
import type { InputReport } from './scorers/define-metric.ts';

export interface BatchValidation {
  name: string;
  /** Per metric file present: what its fields meant to the scorer. */
  metrics: Record<string, InputReport & { metric_id: string; file: string }>;
  /** Files that map to no metric: the runner skips them. */
  ignored_files: string[];
}

/**
 * What POST /batches would make of these files, metric by metric, without scoring: pure, it
 * reads nothing from disk and writes nothing.
 */
export function validateBatch(name: string, files: Record<string, unknown>): BatchValidation {
  const metrics: BatchValidation['metrics'] = {};
  const ignored_files: string[] = [];
  for (const [file, value] of Object.entries(files)) {
    const id = METRIC_BY_FILE[file];
    const entry = id ? METRICS[id] : undefined;
    if (!id || !entry) {
      ignored_files.push(file);
      continue;
    }
    metrics[id] = { metric_id: id, file, ...entry.scorer.inspect(value) };
  }
  return { name, metrics, ignored_files };
}
