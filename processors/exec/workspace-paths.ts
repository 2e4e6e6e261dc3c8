import { constants, type Stats } from 'node:fs';
import { chmod, type FileHandle, lstat, mkdir, open, readlink, realpath } from 'node:fs/promises';
import path from 'node:path';
import { errorCode } from '../../core/errors.ts';

/** Where the workspace appears in the container: messages name paths as the container sees them. */
export const CONTAINER_WORKSPACE = '/workspace';

/** Files and directories the container user (65534, not their owner) must be able to read. */
export const FILE_MODE = 0o644;
export const DIR_MODE = 0o755;

/** C0 and C1 controls, DEL and the Unicode line separators: never part of a path we accept. */
const CONTROL = /[\p{Cc}\u2028\u2029]/u;
const NAME_MAX_BYTES = 255;

export interface PathProblem {
  /** True when the path would land outside its directory (absolute, `..`). */
  outside: boolean;
  why: string;
}

/**
 * What is wrong with a relative path meant to stay under one workspace directory, or undefined
 * when nothing is. Segment by segment rather than one pattern over the whole string (a newline
 * once hid a `..` from a pattern elsewhere), and with a final resolve as a second opinion.
 * Returned, not thrown: the route answers a 400, output collection reports the file as missing.
 */
export function pathProblem(rel: unknown): PathProblem | undefined {
  if (typeof rel !== 'string' || rel === '') return { outside: false, why: 'the path is empty' };
  if (rel.includes('\0')) return { outside: false, why: 'NUL is not allowed in a path' };
  if (CONTROL.test(rel)) return { outside: false, why: 'control characters are not allowed in a path' };
  // A literal character on Linux, but a separator to anything on Windows that reads the name later.
  if (rel.includes('\\')) return { outside: false, why: 'backslashes are not allowed in a path' };
  if (rel.startsWith('/')) return { outside: true, why: 'the path is absolute' };
  for (const segment of rel.split('/')) {
    if (segment === '..') return { outside: true, why: 'the path has a `..` segment' };
    if (segment === '')
      return { outside: false, why: 'the path has an empty segment (`//` or a trailing /)' };
    if (segment === '.') return { outside: false, why: 'the path has a `.` segment' };
    if (Buffer.byteLength(segment) > NAME_MAX_BYTES)
      return { outside: false, why: `a path segment is longer than ${NAME_MAX_BYTES} bytes` };
  }
  const base = path.resolve('/r');
  if (!path.resolve(base, rel).startsWith(`${base}/`))
    return { outside: true, why: 'the path resolves outside' };
  return undefined;
}

/** The sentence a refused path gets; `dir` is `input`, `output` or `config`, `verb` "written" or "read". */
export function pathMessage(rel: unknown, dir: string, verb: string, problem: PathProblem): string {
  const where = `${CONTAINER_WORKSPACE}/${dir}`;
  const shown = quote(String(rel));
  return problem.outside
    ? `File ${shown} would be ${verb} outside ${where}.`
    : `File ${shown} is refused under ${where}: ${problem.why}.`;
}

/**
 * A name in quotes for a message, every control character escaped: JSON.stringify leaves DEL,
 * the C1 controls and U+2028/2029 as they are, and those break a log line or a TAP stream.
 */
export function quote(name: string): string {
  return JSON.stringify(name).replace(
    /[\p{Cc}\u2028\u2029]/gu,
    (c) => `\\u${(c.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`,
  );
}

/** lstat, or undefined when nothing is there. */
async function lstatOrNothing(p: string): Promise<Stats | undefined> {
  try {
    return await lstat(p);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** A workspace step refused, in words that name paths as the container sees them. */
export class WorkspaceError extends Error {}

/** Whether workspace/`name` is a real directory (a symlink to one does not count). */
export async function isRealDirectory(workspace: string, name: string): Promise<boolean> {
  return (await lstatOrNothing(path.join(workspace, name)))?.isDirectory() === true;
}

/** Throws unless workspace/`name` is a real directory; the message names it as the container would. */
export async function assertRealDirectory(workspace: string, name: string): Promise<void> {
  if (!(await isRealDirectory(workspace, name)))
    throw new WorkspaceError(`${CONTAINER_WORKSPACE}/${name} is not a directory (or is a symlink).`);
}

/**
 * Creates the directories of `rel` below workspace/`name` one level at a time, each checked with
 * lstat after mkdir, so none of them can be a symlink (mkdir -p would follow one). Returns the
 * full path `rel` is to be created at. The caller has checked `rel` with pathProblem.
 */
export async function makeParentDirs(workspace: string, name: string, rel: string): Promise<string> {
  const segments = rel.split('/');
  let dir = path.join(workspace, name);
  for (const [i, segment] of segments.slice(0, -1).entries()) {
    dir = path.join(dir, segment);
    let made = true;
    try {
      await mkdir(dir, { mode: DIR_MODE });
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw err;
      made = false;
    }
    if (!(await lstat(dir)).isDirectory()) {
      const shown = `${CONTAINER_WORKSPACE}/${name}/${segments.slice(0, i + 1).join('/')}`;
      throw new WorkspaceError(`${quote(shown)} is not a directory (or is a symlink).`);
    }
    // The process umask may have taken bits off; the container user must be able to enter it.
    if (made) await chmod(dir, DIR_MODE);
  }
  return path.join(dir, segments.at(-1) as string);
}

/** Flags for a file we create: never an existing file, never through a symlink. */
export const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

export type OpenedFile = { handle: FileHandle; size: number };
export type RefusedFile = { reason: string };

/**
 * Opens `rel` under `root` for reading when it is a regular file reached without any symlink,
 * else says why not. Everything here may have been placed by a hostile container:
 * - each directory on the way is lstat'ed (a symlinked directory is refused, not followed);
 * - the last component is lstat'ed before it is opened, so a FIFO or a device is never opened
 *   (opening a device can act on it);
 * - the open itself has O_NOFOLLOW (a symlink swapped in since is refused) and O_NONBLOCK (a
 *   FIFO swapped in does not block), and fstat must still say "regular file";
 * - where /proc is mounted, the opened descriptor's real path must be `root/rel`, which no
 *   rename race between the checks and the open can fake.
 */
export async function openRegularFile(root: string, rel: string): Promise<OpenedFile | RefusedFile> {
  const rootReal = await realpath(root);
  const segments = rel.split('/');
  let p = rootReal;
  for (const [i, segment] of segments.entries()) {
    p = path.join(p, segment);
    const stats = await lstatOrNothing(p);
    if (!stats) return { reason: 'not found' };
    const last = i === segments.length - 1;
    if (stats.isSymbolicLink())
      return { reason: last ? 'not a regular file (a symlink)' : 'a symlink on its path' };
    if (!last && !stats.isDirectory()) return { reason: 'not found' };
    if (last && !stats.isFile())
      return { reason: `not a regular file (${stats.isDirectory() ? 'a directory' : 'a special file'})` };
  }
  let handle: FileHandle;
  try {
    handle = await open(
      p,
      constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY,
    );
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOENT') return { reason: 'not found' };
    if (code === 'ELOOP') return { reason: 'not a regular file (a symlink)' };
    if (code === 'EACCES' || code === 'EPERM') return { reason: 'not readable' };
    throw err;
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw refusal('not a regular file');
    const real = await readlink(`/proc/self/fd/${handle.fd}`).catch((err) => {
      if (errorCode(err) === 'ENOENT') return p;
      throw err;
    });
    if (real !== p) throw refusal('it moved while it was being opened');
    return { handle, size: stats.size };
  } catch (err) {
    await handle.close();
    if (err instanceof Refusal) return { reason: err.message };
    throw err;
  }
}

class Refusal extends Error {}
const refusal = (reason: string) => new Refusal(reason);

/**
 * Reads an opened file whole if it holds at most `maxBytes`. The size from fstat is checked
 * first, and the read still stops one byte past it: a file can grow after its fstat, and what
 * is returned must be what was counted.
 */
export async function readCapped(
  handle: FileHandle,
  size: number,
  maxBytes: number,
): Promise<{ content: Buffer } | RefusedFile> {
  if (size > maxBytes) return { reason: `larger than ${maxBytes} bytes (${size})` };
  const buffer = Buffer.alloc(size + 1);
  let filled = 0;
  while (filled < buffer.length) {
    const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  if (filled !== size) return { reason: 'it changed size while it was being read' };
  return { content: buffer.subarray(0, filled) };
}
