import { open } from 'node:fs/promises';
import type { Static } from 'typebox';
import { coerceError, DockhandError, errorCode, TooLargeError, ValidationError } from '../../core/errors.ts';
import type { ExecInput } from '../../queues/schemas/exec.ts';
import { downloadObject, type MinioStore } from './minio-transfer.ts';
import {
  assertRealDirectory,
  CONTAINER_WORKSPACE,
  CREATE_FLAGS,
  FILE_MODE,
  makeParentDirs,
  pathMessage,
  pathProblem,
  quote,
  WorkspaceError,
} from './workspace-paths.ts';

export type ExecInputData = Static<typeof ExecInput>;

/** config.exec's input caps. */
export interface InputLimits {
  /** One file: files[], a MinIO object, graph_data.json, config.json (EXEC_MAX_FILE_BYTES). */
  maxFileBytes: number;
  /** Everything written, MinIO objects included (EXEC_MAX_INPUT_BYTES). */
  maxInputBytes: number;
}

type Planned =
  | { field: string; dir: 'input' | 'config'; rel: string; content: Buffer }
  | { field: string; dir: 'input'; rel: string; objectName: string };

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/**
 * Checks everything about `input` that can be checked without writing: each path stays under
 * input/ (see pathProblem), no two entries write the same path or a file where another needs a
 * directory, base64 content decodes, and no file is over maxFileBytes nor the whole over
 * maxInputBytes (MinIO objects are counted as they download). For the route at submit time;
 * writeInputs runs it again, since what comes back from Redis is not trusted.
 * Throws ValidationError (400) or TooLargeError (413), naming the field.
 */
export function checkInputPaths(input: ExecInputData | undefined, limits: InputLimits): void {
  planInputs(input, limits);
}

function planInputs(input: ExecInputData | undefined, limits: InputLimits): Planned[] {
  const planned: Planned[] = [];
  if (!input) return planned;
  if (input.graph_data !== undefined && input.graph_data !== null)
    planned.push({
      field: 'input.graph_data',
      dir: 'input',
      rel: 'graph_data.json',
      content: json(input.graph_data, 'input.graph_data'),
    });
  for (const [i, file] of (input.files ?? []).entries()) {
    const field = `input.files[${i}].${file.path === undefined ? 'name' : 'path'}`;
    const rel = file.path ?? file.name;
    checkPath(rel, field);
    planned.push({ field, dir: 'input', rel, content: decode(file, `input.files[${i}].content`, rel) });
  }
  for (const [i, object] of (input.minio_objects ?? []).entries()) {
    const field = `input.minio_objects[${i}].local_path`;
    checkPath(object.local_path, field);
    planned.push({ field, dir: 'input', rel: object.local_path, objectName: object.object_name });
  }
  if (input.config_data !== undefined && input.config_data !== null)
    planned.push({
      field: 'input.config_data',
      dir: 'config',
      rel: 'config.json',
      content: json(input.config_data, 'input.config_data'),
    });
  checkCollisions(planned);
  checkSizes(planned, limits);
  return planned;
}

function checkPath(rel: unknown, field: string): asserts rel is string {
  const problem = pathProblem(rel);
  if (problem) throw new ValidationError(field, pathMessage(rel, 'input', 'written', problem));
}

function json(value: unknown, field: string): Buffer {
  try {
    return Buffer.from(JSON.stringify(value), 'utf8');
  } catch {
    throw new ValidationError(field, `${field} cannot be written as JSON.`);
  }
}

function decode(file: { content: string; encoding?: 'utf8' | 'base64' }, field: string, rel: string): Buffer {
  if (typeof file.content !== 'string') throw new ValidationError(field, `${field} must be a string.`);
  if (file.encoding !== 'base64') return Buffer.from(file.content, 'utf8');
  // Buffer.from skips what is not base64 without a word: a corrupted upload must be refused instead.
  const compact = file.content.replace(/\s+/g, '');
  if (!BASE64.test(compact) || compact.length % 4 === 1)
    throw new ValidationError(field, `File ${quote(rel)}: ${field} is not valid base64.`);
  return Buffer.from(compact, 'base64');
}

/**
 * The same path twice, or `a` as a file and `a/b` below it: either would make the second write
 * fail half-way (or, without O_EXCL, replace the first), so both are refused up front.
 */
function checkCollisions(planned: Planned[]): void {
  const files = new Map<string, string>();
  const dirs = new Map<string, string>();
  for (const p of planned) {
    const key = `${p.dir}/${p.rel}`;
    const shown = quote(p.rel);
    const other = files.get(key) ?? dirs.get(key);
    if (other) throw new ValidationError(p.field, `File ${shown} is also written by ${other}.`);
    const segments = key.split('/');
    for (let n = 1; n < segments.length; n++) {
      const parent = segments.slice(0, n).join('/');
      const owner = files.get(parent);
      if (owner)
        throw new ValidationError(p.field, `File ${shown} needs a directory where ${owner} writes a file.`);
      if (!dirs.has(parent)) dirs.set(parent, p.field);
    }
    files.set(key, p.field);
  }
}

function checkSizes(planned: Planned[], limits: InputLimits): void {
  let total = 0;
  for (const p of planned) {
    if (!('content' in p)) continue;
    const shown = quote(p.rel);
    const size = p.content.length;
    if (size > limits.maxFileBytes)
      throw new TooLargeError(
        p.field,
        `File ${shown} is ${size} bytes, over the ${limits.maxFileBytes}-byte limit for one input file.`,
      );
    total += size;
    if (total > limits.maxInputBytes)
      throw new TooLargeError(
        p.field,
        `The input passes its ${limits.maxInputBytes}-byte limit in all at file ${shown}.`,
      );
  }
}

/**
 * Fills a fresh workspace (its input/ and config/ already there, empty and ours): graph_data →
 * input/graph_data.json, files[] and MinIO objects at their paths under input/, config_data →
 * config/config.json. Everything is checked again first (planInputs). Each file is created new
 * (O_EXCL, O_NOFOLLOW) with mode 0644 in directories made one level at a time with mode 0755, so
 * the container user can read them and no write goes through a symlink. MinIO objects stream to
 * a temp name and are linked into place, capped per file and by what is left of the total.
 * Returns the bytes written.
 */
export async function writeInputs(
  workspace: string,
  input: ExecInputData | undefined,
  limits: InputLimits,
  minio?: MinioStore,
): Promise<{ bytes: number }> {
  const planned = planInputs(input, limits);
  const objects = planned.filter((p) => 'objectName' in p);
  if (objects.length > 0 && !minio)
    throw new ValidationError(
      'input.minio_objects',
      'input.minio_objects needs MinIO, and MINIO_ENDPOINT is not configured.',
      'minio_not_configured',
    );
  let bytes = 0;
  for (const dir of new Set(planned.map((p) => p.dir))) await assertRealDirectory(workspace, dir);
  for (const p of planned) {
    if (!('content' in p)) continue;
    await local(p, async () => {
      const handle = await open(await makeParentDirs(workspace, p.dir, p.rel), CREATE_FLAGS, FILE_MODE);
      try {
        await handle.chmod(FILE_MODE);
        await handle.writeFile(p.content);
      } finally {
        await handle.close();
      }
    });
    bytes += p.content.length;
  }
  for (const p of planned) {
    if (!('objectName' in p) || !minio) continue;
    const dest = await local(p, () => makeParentDirs(workspace, p.dir, p.rel));
    const cap = Math.min(limits.maxFileBytes, limits.maxInputBytes - bytes);
    try {
      bytes += await downloadObject(minio.client, minio.bucket, p.objectName, dest, cap);
    } catch (err) {
      if (err instanceof TooLargeError) {
        const shown = quote(p.objectName);
        throw new TooLargeError(
          p.field,
          cap === limits.maxFileBytes
            ? `MinIO object ${shown} is over the ${limits.maxFileBytes}-byte limit for one input file.`
            : `MinIO object ${shown} takes the input past its ${limits.maxInputBytes}-byte limit in all.`,
        );
      }
      // A missing object or an unreachable MinIO already names the object.
      if (err instanceof DockhandError) throw err;
      throw localError(p, err);
    }
  }
  return { bytes };
}

/**
 * Runs one file-system step for `p`; a failure is told by the file's name in the container, not
 * by the host path Node's message carries (that would reach the caller's response).
 */
async function local<T>(p: Planned, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    throw localError(p, err);
  }
}

function localError(p: Planned, err: unknown): Error {
  if (err instanceof WorkspaceError) return err;
  const why = errorCode(err) ?? coerceError(err).message;
  return new Error(
    `File ${quote(p.rel)} could not be written under ${CONTAINER_WORKSPACE}/${p.dir} (${why}).`,
    {
      cause: err,
    },
  );
}
