import { isUtf8 } from 'node:buffer';
import path from 'node:path';
import type { Static } from 'typebox';
import { errorCode, ValidationError } from '../../core/errors.ts';
import type { ExecOutputFile, ExecOutputSpec } from '../../queues/schemas/exec.ts';
import {
  CONTAINER_WORKSPACE,
  isRealDirectory,
  openRegularFile,
  pathMessage,
  pathProblem,
  readCapped,
} from './workspace-paths.ts';

export type ExecOutputSpecData = Static<typeof ExecOutputSpec>;
export type ExecOutputFileData = Static<typeof ExecOutputFile>;

export interface OutputLimits {
  /** Largest file returned (EXEC_MAX_OUTPUT_FILE_BYTES); graph_update.json included. */
  maxOutputFileBytes: number;
  /**
   * All returned files together; a file that would pass it is left out like a too-large one.
   * Default: no limit beyond the per-file one.
   */
  maxOutputBytes?: number;
}

export interface CollectedOutputs {
  output_files: ExecOutputFileData[];
  /** Expected files not returned, by name as requested (for metadata.missing_files). */
  missing: string[];
  /** Why each missing file was not returned, in the same order. */
  problems: { name: string; reason: string }[];
  /** Parsed output/graph_update.json when asked for and usable; else null. */
  graph_update: unknown | null;
  /** Why graph_update.json, though present, was not used (not valid JSON, too large, a symlink…). */
  graphUpdateError?: string;
}

const GRAPH_UPDATE = 'graph_update.json';

/**
 * As deep as the gateway takes a JSON body. JSON.parse takes any depth, but the response goes on
 * to parsers that do not: Python's json fails past ~1,000 levels (every Exec Agent client on
 * exec-responses hears every response), JSON.stringify past ~10,000 (BullMQ storing it).
 */
export const MAX_GRAPH_UPDATE_DEPTH = 64;

/** Whether arrays and objects nest more than `max` levels; iterative, so no depth overflows it. */
function nestedDeeperThan(value: unknown, max: number): boolean {
  const pending: Array<[unknown, number]> = [[value, 1]];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [item, depth] = next;
    if (item === null || typeof item !== 'object') continue;
    if (depth > max) return true;
    for (const child of Array.isArray(item) ? item : Object.values(item)) pending.push([child, depth + 1]);
  }
  return false;
}

/**
 * Reads back what the container left in output/. Every entry there is hostile: see
 * openRegularFile for how symlinks, FIFOs, devices and directories are refused without being
 * followed or opened. A file over the cap is not read at all. Text that is valid UTF-8 is
 * returned as is, anything else as base64 with `encoding: "base64"`. Nothing here throws for
 * what the container did; a refused or absent file is listed in `missing` with its reason.
 */
export async function collectOutputs(
  workspace: string,
  spec: ExecOutputSpecData | undefined,
  limits: OutputLimits,
): Promise<CollectedOutputs> {
  const root = path.join(workspace, 'output');
  const result: CollectedOutputs = { output_files: [], missing: [], problems: [], graph_update: null };
  // The runner made it, but what the container could do to it is not assumed here.
  const usable = await isRealDirectory(workspace, 'output');
  const refuse = (name: string, reason: string) => {
    result.missing.push(name);
    result.problems.push({ name, reason });
  };
  let total = 0;
  for (const name of new Set(spec?.expected_files ?? [])) {
    const problem = pathProblem(name);
    if (problem) {
      refuse(name, pathMessage(name, 'output', 'read', problem));
      continue;
    }
    const read = usable
      ? await readOutputFile(root, name, limits.maxOutputFileBytes)
      : { reason: 'output/ is not a directory' };
    if ('reason' in read) {
      refuse(name, read.reason);
      continue;
    }
    if (limits.maxOutputBytes !== undefined && total + read.content.length > limits.maxOutputBytes) {
      refuse(name, `the files returned would pass ${limits.maxOutputBytes} bytes in all`);
      continue;
    }
    total += read.content.length;
    const text = isUtf8(read.content);
    result.output_files.push({
      name,
      path: `${CONTAINER_WORKSPACE}/output/${name}`,
      content: read.content.toString(text ? 'utf8' : 'base64'),
      size: read.content.length,
      ...(text ? {} : { encoding: 'base64' as const }),
    });
  }
  if (spec?.graph_update) {
    const read = usable
      ? await readOutputFile(root, GRAPH_UPDATE, limits.maxOutputFileBytes)
      : { reason: 'output/ is not a directory' };
    if ('content' in read) {
      let parsed: unknown = null;
      try {
        parsed = JSON.parse(read.content.toString('utf8'));
      } catch {
        // JSON.parse's message quotes the content: the container's words stay out of ours.
        result.graphUpdateError = `output/${GRAPH_UPDATE} is not valid JSON.`;
      }
      if (nestedDeeperThan(parsed, MAX_GRAPH_UPDATE_DEPTH))
        result.graphUpdateError = `output/${GRAPH_UPDATE} is nested deeper than ${MAX_GRAPH_UPDATE_DEPTH} levels.`;
      else result.graph_update = parsed;
    } else if (read.reason !== 'not found') {
      result.graphUpdateError = `output/${GRAPH_UPDATE} was not read: ${read.reason}.`;
    }
  }
  return result;
}

async function readOutputFile(
  root: string,
  name: string,
  maxBytes: number,
): Promise<{ content: Buffer } | { reason: string }> {
  try {
    const opened = await openRegularFile(root, name);
    if ('reason' in opened) return opened;
    try {
      return await readCapped(opened.handle, opened.size, maxBytes);
    } finally {
      await opened.handle.close();
    }
  } catch (err) {
    // Whatever else the container's tree can make the file system say (ENAMETOOLONG, EIO):
    // that file is missing, the execution's result still stands.
    return { reason: `could not be read (${errorCode(err) ?? 'error'})` };
  }
}

/**
 * For the route at submit time: every expected file name must stay under output/ (the same
 * rule as input paths). Throws ValidationError naming `output.expected_files[i]`.
 */
export function checkOutputPaths(spec: ExecOutputSpecData | undefined): void {
  for (const [i, name] of (spec?.expected_files ?? []).entries()) {
    const problem = pathProblem(name);
    if (problem)
      throw new ValidationError(`output.expected_files[${i}]`, pathMessage(name, 'output', 'read', problem));
  }
}
