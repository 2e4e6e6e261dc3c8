import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { glob } from 'tinyglobby';
import { ValidationError } from '../../core/errors.ts';
import type { BatchSettings } from './settings.ts';

/**
 * The folder protocol existing users rely on: `Inputs/<batch>/` with metric files,
 * `Outputs/<batch>/result.json`, `state/processed.json` (absolute paths), and a `.lock` in
 * the batch folder while it runs. Everything here is crash-safe: results and state are
 * written to a temp file and renamed, and a lock older than the stale bound is reclaimed.
 */

export type FolderState = 'pending' | 'processed' | 'locked' | 'no input files';

export interface BatchFolder {
  name: string;
  /** Absolute path: the batch's identity in processed.json and its job id. */
  path: string;
  state: FolderState;
  files: string[];
  mtimeMs: number;
}

export const LOCK_FILE = '.lock';
export const RESULT_FILE = 'result.json';

/** Writes a file so readers see the old content or the new, never half: temp + fsync + rename. */
export async function writeFileAtomic(file: string, content: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const handle = await fs.open(temp, 'w');
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.rename(temp, file);
  } catch (err) {
    await fs.rm(temp, { force: true });
    throw err;
  }
}

/**
 * processed.json is read on every listing and every batch; it only changes when a group
 * commit rewrites it, so the parsed set is reused while the file's mtime and size hold.
 */
const processedCache = new Map<string, { mtimeMs: number; size: number; set: Set<string> }>();

async function readProcessed(stateFile: string): Promise<Set<string>> {
  try {
    const stat = await fs.stat(stateFile);
    const cached = processedCache.get(stateFile);
    if (cached && cached.mtimeMs === stat.mtimeMs && cached.size === stat.size) return cached.set;
    const parsed = JSON.parse(await fs.readFile(stateFile, 'utf8'));
    const set = new Set<string>(Array.isArray(parsed) ? parsed.filter((p) => typeof p === 'string') : []);
    processedCache.set(stateFile, { mtimeMs: stat.mtimeMs, size: stat.size, set });
    return set;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
    throw new Error(`${stateFile} is not readable JSON: ${(err as Error).message}`);
  }
}

/**
 * Runs `fn` holding an exclusive lock file: O_EXCL creation is atomic on local filesystems, so
 * two workers (or a worker and `batch run-once`) cannot interleave a read-modify-write.
 */
async function withLockFile<T>(lockPath: string, staleMs: number, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    if (await tryLock(lockPath, staleMs)) break;
    if (attempt > 1000) throw new Error(`Could not take ${lockPath} within 10 s.`);
    await new Promise((r) => setTimeout(r, 10));
  }
  try {
    return await fn();
  } finally {
    await fs.rm(lockPath, { force: true });
  }
}

/**
 * Takes a lock file atomically; a lock older than `staleMs` is moved aside first (rename is
 * atomic, so of two reclaimers only one wins) and then taken. Returns false when held.
 */
export async function tryLock(lockPath: string, staleMs: number): Promise<boolean> {
  const body = JSON.stringify({ pid: process.pid, host: hostname(), at: new Date().toISOString() });
  try {
    await fs.writeFile(lockPath, body, { flag: constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const stat = await fs.stat(lockPath).catch(() => undefined);
  if (stat && Date.now() - stat.mtimeMs < staleMs) return false;
  const aside = `${lockPath}.stale-${randomBytes(4).toString('hex')}`;
  try {
    await fs.rename(lockPath, aside);
  } catch {
    return false; // someone else reclaimed it first
  }
  await fs.rm(aside, { force: true });
  try {
    await fs.writeFile(lockPath, body, { flag: constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY });
    return true;
  } catch {
    return false;
  }
}

/**
 * `root/name`, refused unless it is one folder directly inside root. Names are checked by the
 * queue's schema before a job runs; this holds for every other caller too (defence in depth:
 * a name must never reach a path outside the batch root).
 */
export function folderIn(root: string, name: string): string {
  const dir = path.resolve(root, name);
  if (path.dirname(dir) !== path.resolve(root) || name !== path.basename(dir))
    throw new ValidationError('name', `${JSON.stringify(name)} is not a batch folder name.`);
  return dir;
}

export function createBatchFolders(settings: BatchSettings) {
  const staleMs = settings.staleLockSeconds * 1000;

  async function inputFiles(dir: string): Promise<string[]> {
    const files = await glob(settings.globs, {
      cwd: dir,
      onlyFiles: true,
      dot: false,
      followSymbolicLinks: false,
    });
    return files.sort();
  }

  async function describe(name: string, processed: Set<string>): Promise<BatchFolder | undefined> {
    const dir = folderIn(settings.inputsRoot, name);
    const stat = await fs.stat(dir).catch(() => undefined);
    if (!stat?.isDirectory()) return undefined;
    const files = await inputFiles(dir);
    let state: FolderState = 'pending';
    if (processed.has(dir)) state = 'processed';
    else if (files.length === 0) state = 'no input files';
    else {
      const lock = await fs.stat(path.join(dir, LOCK_FILE)).catch(() => undefined);
      if (lock && Date.now() - lock.mtimeMs < staleMs) state = 'locked';
    }
    return { name, path: dir, state, files, mtimeMs: stat.mtimeMs };
  }

  let waiting: Array<{ dir: string; resolve: () => void; reject: (err: unknown) => void }> = [];
  let flushing = false;
  async function flush(): Promise<void> {
    while (waiting.length > 0) {
      const group = waiting;
      waiting = [];
      try {
        await fs.mkdir(path.dirname(settings.stateFile), { recursive: true });
        await withLockFile(`${settings.stateFile}.lock`, 30_000, async () => {
          // A copy: the cached set must only ever mirror what is on disk.
          const processed = new Set(await readProcessed(settings.stateFile));
          for (const { dir } of group) processed.add(dir);
          await writeFileAtomic(settings.stateFile, `${JSON.stringify([...processed], null, 2)}\n`);
        });
        for (const w of group) w.resolve();
      } catch (err) {
        for (const w of group) w.reject(err);
      }
    }
    flushing = false;
  }

  return {
    settings,

    /** Every batch folder (names starting with a dot are in-flight uploads, not batches). */
    async list(): Promise<BatchFolder[]> {
      const entries = await fs.readdir(settings.inputsRoot, { withFileTypes: true }).catch((err) => {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw err;
      });
      const processed = await readProcessed(settings.stateFile);
      const names = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
      const described = await Promise.all(names.map((name) => describe(name, processed)));
      return described.filter((b): b is BatchFolder => b !== undefined);
    },

    async get(name: string): Promise<BatchFolder | undefined> {
      return describe(name, await readProcessed(settings.stateFile));
    },

    inputFiles,
    resultPath: (name: string) => path.join(folderIn(settings.outputsRoot, name), RESULT_FILE),
    lock: (dir: string) => tryLock(path.join(dir, LOCK_FILE), staleMs),
    unlock: (dir: string) => fs.rm(path.join(dir, LOCK_FILE), { force: true }),

    async isProcessed(dir: string): Promise<boolean> {
      return (await readProcessed(settings.stateFile)).has(dir);
    },

    /**
     * Group commit: marks made while a write is under way join the next one, so N concurrent
     * batches cost a few rewrites of processed.json, not N (each is a read, a write and an fsync).
     */
    markProcessed(dir: string): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        waiting.push({ dir, resolve, reject });
        if (!flushing) {
          flushing = true;
          void flush();
        }
      });
    },

    /**
     * Creates `Inputs/<name>/` with its files all at once: written into a hidden temp folder
     * and renamed, so the tick never sees a half-uploaded batch. False when the name exists.
     */
    async create(name: string, files: Record<string, string>): Promise<boolean> {
      await fs.mkdir(settings.inputsRoot, { recursive: true });
      const target = folderIn(settings.inputsRoot, name);
      if (await fs.stat(target).catch(() => undefined)) return false;
      const temp = path.join(settings.inputsRoot, `.upload-${name}-${randomBytes(4).toString('hex')}`);
      await fs.mkdir(temp);
      try {
        for (const [file, content] of Object.entries(files))
          await fs.writeFile(path.join(temp, file), content);
        await fs.rename(temp, target);
        return true;
      } catch (err) {
        await fs.rm(temp, { recursive: true, force: true });
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST' || code === 'ENOTEMPTY') return false;
        throw err;
      }
    },
  };
}
export type BatchFolders = ReturnType<typeof createBatchFolders>;
