import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../../core/errors.ts';

/** Where batches live and how they run; the old runner's config.yaml keys, resolved. */
export interface BatchSettings {
  inputsRoot: string;
  outputsRoot: string;
  stateFile: string;
  /** Globs relative to a batch folder, e.g. `*.json`, `inputs/*.json`. */
  globs: string[];
  /** An external engine to run instead of the built-in one; empty = built-in. */
  engineCommand: string;
  /**
   * Variables engine_command sees besides PATH, HOME, LANG, TZ and BATCH_DIR: config.yaml's
   * `engine_env` and BATCH_ENGINE_ENV. Nothing else of Dockhand's environment (its keys) reaches it.
   */
  engineEnv: string[];
  /** Kept for config.yaml compatibility; a Python callable cannot run here (see docs/metrics.md). */
  engineCallable: string;
  /** Batches enqueued per tick, newest first; 0 = all. */
  perTick: number;
  /** A .lock older than this is from a crashed run and is reclaimed. */
  staleLockSeconds: number;
}

const KEYS = [
  'inputs_root',
  'outputs_root',
  'state_file',
  'file_glob_patterns',
  'engine_command',
  'engine_callable',
  'engine_env',
];

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Reads the optional config.yaml (the old runner's keys) over defaults under the batch root.
 * Relative paths resolve against the working directory, as the old runner's did. Called once at
 * start-up; a malformed file stops it with one sentence.
 */
export function loadBatchSettings(options: {
  dataDir: string;
  configFile?: string;
  perTick: number;
  staleLockSeconds: number;
  /** BATCH_ENGINE_ENV. Default none. */
  engineEnv?: string[];
}): BatchSettings {
  const defaults: BatchSettings = {
    inputsRoot: path.join(options.dataDir, 'Inputs'),
    outputsRoot: path.join(options.dataDir, 'Outputs'),
    stateFile: path.join(options.dataDir, 'state', 'processed.json'),
    globs: ['*.json'],
    engineCommand: '',
    engineCallable: '',
    engineEnv: options.engineEnv ?? [],
    perTick: options.perTick,
    staleLockSeconds: options.staleLockSeconds,
  };
  const file = options.configFile ?? path.join(options.dataDir, 'config.yaml');
  if (!existsSync(file)) {
    if (options.configFile)
      throw new ConfigError('BATCH_CONFIG', `BATCH_CONFIG names ${file}, which does not exist.`);
    return defaults;
  }
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(
      'BATCH_CONFIG',
      `${file} is not valid YAML (${(err as Error).message.split('\n')[0]}).`,
    );
  }
  if (doc === null || doc === undefined) return defaults;
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError('BATCH_CONFIG', `${file} must be a mapping of ${KEYS.join(', ')}.`);
  }
  const y = doc as Record<string, unknown>;
  const str = (key: string): string | undefined => {
    const v = y[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw new ConfigError('BATCH_CONFIG', `${file}: ${key} must be a string.`);
    return v;
  };
  const globs = y.file_glob_patterns;
  if (
    globs !== undefined &&
    (!Array.isArray(globs) || globs.some((g) => typeof g !== 'string' || g.includes('..')))
  ) {
    throw new ConfigError(
      'BATCH_CONFIG',
      `${file}: file_glob_patterns must be a list of relative glob strings.`,
    );
  }
  const engineEnv = y.engine_env;
  if (
    engineEnv !== undefined &&
    engineEnv !== null &&
    (!Array.isArray(engineEnv) || engineEnv.some((n) => typeof n !== 'string' || !ENV_NAME.test(n)))
  ) {
    throw new ConfigError(
      'BATCH_CONFIG',
      `${file}: engine_env must be a list of environment variable names.`,
    );
  }
  const abs = (p: string | undefined, fallback: string) => (p ? path.resolve(p) : fallback);
  return {
    ...defaults,
    inputsRoot: abs(str('inputs_root'), defaults.inputsRoot),
    outputsRoot: abs(str('outputs_root'), defaults.outputsRoot),
    stateFile: abs(str('state_file'), defaults.stateFile),
    globs: (globs as string[] | undefined)?.length ? (globs as string[]) : defaults.globs,
    engineCommand: str('engine_command') ?? '',
    engineCallable: str('engine_callable') ?? '',
    engineEnv: [...new Set([...defaults.engineEnv, ...((engineEnv as string[] | null | undefined) ?? [])])],
  };
}
