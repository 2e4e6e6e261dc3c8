import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { BatchLockedError, BatchMissingError, EngineError, ResultWriteError } from '../../core/errors.ts';
import type { BatchOutcome } from '../../queues/schemas/batches.ts';
import { METRIC_BY_FILE, METRICS } from './catalog.ts';
import { type BatchResult, type MetricInput, scoreBatch } from './engine.ts';
import { type BatchFolders, writeFileAtomic } from './folder.ts';
import type { Narrator } from './narrative.ts';

const run = promisify(execFile);

export interface RunBatchDeps {
  folders: BatchFolders;
  narrator?: Narrator;
  log: (line: string) => void;
  /** Engine command timeout. Default 10 minutes. */
  engineTimeoutMs?: number;
  /** Where the engine's variables are read from (settings.engineEnv picks). Default process.env. */
  environment?: Record<string, string | undefined>;
}

/** What every engine gets: enough to find programs and format text, no secrets. */
export const ENGINE_BASE_ENV = ['PATH', 'HOME', 'LANG', 'TZ'] as const;

/**
 * The engine's environment: the base names and those the operator listed, from `source`, plus
 * BATCH_DIR. Dockhand's own environment holds API keys and cloud credentials; an external
 * command is given none of them unless named.
 */
export function engineEnvironment(
  names: readonly string[],
  source: Record<string, string | undefined>,
  dir: string,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of [...ENGINE_BASE_ENV, ...names]) {
    const value = source[name];
    if (value !== undefined) env[name] = value;
  }
  env.BATCH_DIR = dir;
  return env;
}

async function readInputs(
  dir: string,
  files: string[],
  log: (l: string) => void,
): Promise<Record<string, MetricInput>> {
  const inputs: Record<string, MetricInput> = {};
  for (const file of files) {
    const id = METRIC_BY_FILE[path.basename(file)];
    if (!id) {
      log(`unmapped file ignored: ${file}`);
      continue;
    }
    try {
      inputs[id] = { ok: true, value: JSON.parse(await fs.readFile(path.join(dir, file), 'utf8')) };
    } catch (err) {
      inputs[id] = { ok: false, error: (err as Error).message };
    }
  }
  const missing = Object.entries(METRICS)
    .filter(([id]) => !(id in inputs))
    .map(([, e]) => e.file);
  if (missing.length) log(`Missing mapped files: ${JSON.stringify(missing)}`);
  return inputs;
}

async function externalEngine(
  command: string,
  env: Record<string, string>,
  timeoutMs: number,
): Promise<BatchResult> {
  // The command gets the batch folder as its last argument (and BATCH_DIR) and prints result JSON.
  let stdout: string;
  try {
    ({ stdout } = await run('/bin/sh', ['-c', `${command} "$BATCH_DIR"`], {
      env,
      timeout: timeoutMs,
      maxBuffer: 64 * 1024 * 1024,
    }));
  } catch (err) {
    const e = err as { code?: unknown; stderr?: string; message: string };
    throw new EngineError(
      `engine_command failed (${e.code ?? 'error'}): ${(e.stderr || e.message).trim().slice(0, 500)}`,
    );
  }
  try {
    const parsed = JSON.parse(stdout) as BatchResult;
    if (!parsed || typeof parsed !== 'object' || !('metrics' in parsed) || !('summary' in parsed)) {
      throw new Error('it has no metrics and summary');
    }
    return parsed;
  } catch (err) {
    throw new EngineError(`engine_command printed no result JSON: ${(err as Error).message}.`);
  }
}

/**
 * One batch, start to finish: lock → score → result.json (atomic) → processed → unlock. The
 * lock is released whatever happens, and processed.json is only written after the result is,
 * so a crash at any point leaves the batch to be run again, never marked done without output.
 */
export async function runBatch(deps: RunBatchDeps, name: string): Promise<BatchOutcome> {
  const { folders, log } = deps;
  const folder = await folders.get(name);
  if (!folder) throw new BatchMissingError(name);
  if (folder.state === 'processed') return { batch: name, path: folder.path, skipped: 'already processed' };
  if (!(await folders.lock(folder.path))) throw new BatchLockedError(name);
  try {
    if (await folders.isProcessed(folder.path))
      return { batch: name, path: folder.path, skipped: 'already processed' };
    const startedAt = new Date().toISOString();
    let result: BatchResult;
    const { engineCommand, engineEnv } = folders.settings;
    if (engineCommand) {
      const env = engineEnvironment(engineEnv, deps.environment ?? process.env, folder.path);
      result = await externalEngine(engineCommand, env, deps.engineTimeoutMs ?? 600_000);
    } else {
      const inputs = await readInputs(folder.path, folder.files, log);
      result = scoreBatch(inputs);
      if (deps.narrator) result = await deps.narrator.rewrite(result);
    }
    const output = {
      ...result,
      batch: { name, path: folder.path, started_at: startedAt, finished_at: new Date().toISOString() },
    };
    const resultPath = folders.resultPath(name);
    try {
      await writeFileAtomic(resultPath, `${JSON.stringify(output, null, 2)}\n`);
    } catch (err) {
      throw new ResultWriteError(`Could not write ${resultPath}: ${(err as Error).message}`);
    }
    await folders.markProcessed(folder.path);
    log(
      `processed ${name}: ${result.summary.scored_metrics} metric(s), overall ${result.summary.overall_score}`,
    );
    return {
      batch: name,
      path: folder.path,
      resultPath,
      scored_metrics: result.summary.scored_metrics,
      overall_score: result.summary.overall_score,
    };
  } finally {
    await folders.unlock(folder.path);
  }
}
