import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { errorCode } from '../core/errors.ts';
import { processAlive } from './docker-sandbox.ts';

/**
 * Exec workspaces on the host: `<root>/<host>-<pid>/<random>/{input,output,config}`, bound at
 * /workspace in one container each. The owner directory names the worker process, so a
 * restarted worker removes what a dead one left behind.
 *
 * Modes, for a container user that is not the worker's (65534 by default): the workspace and
 * output/ are 1777, so the command can write there (and its working directory) without
 * owning them; the sticky bit stops it from renaming or replacing input/, output/ or config/
 * themselves (say, with a symlink to a host path the processor would then read). input/ and
 * config/ are 0755: the worker writes there, the command only reads.
 *
 * Removal happens only after the container is gone (no process of the command can race it),
 * and `rm -r` removes symlinks the command planted without following them.
 */
export const ownerDirName = (owner: string) => owner.replace('/', '-');

export async function makeWorkspace(root: string, owner: string): Promise<string> {
  const parent = path.join(root, ownerDirName(owner));
  await mkdir(parent, { recursive: true, mode: 0o700 });
  const dir = path.join(parent, randomBytes(8).toString('hex'));
  await mkdir(dir, { mode: 0o700 });
  await Promise.all([
    mkdir(path.join(dir, 'input'), { mode: 0o755 }),
    mkdir(path.join(dir, 'config'), { mode: 0o755 }),
    mkdir(path.join(dir, 'output')),
  ]);
  // Explicit, since mkdir's mode passes through the umask.
  await Promise.all([
    chmod(path.join(dir, 'input'), 0o755),
    chmod(path.join(dir, 'config'), 0o755),
    chmod(path.join(dir, 'output'), 0o1777),
  ]);
  await chmod(dir, 0o1777);
  return dir;
}

/** Never throws: a workspace that cannot go stays for the next sweep. */
export async function removeWorkspace(dir: string): Promise<boolean> {
  try {
    await rm(dir, { recursive: true, force: true, maxRetries: 2 });
    return true;
  } catch (err) {
    // fs.rm names every entry by its full path, so a tree deeper than PATH_MAX (a command makes
    // one with mkdir and chdir, which have no such limit) fails with ENAMETOOLONG, and would
    // fail at every sweep after, keeping whatever the command wrote there for good.
    if (errorCode(err) !== 'ENAMETOOLONG') return false;
  }
  try {
    await flatten(dir);
    await rm(dir, { recursive: true, force: true, maxRetries: 2 });
    return true;
  } catch {
    return false;
  }
}

/** Paths longer than this are moved up before going deeper: far below PATH_MAX (4096). */
const SHALLOW_BYTES = 1024;

/**
 * Moves every directory whose path grows past SHALLOW_BYTES up to `root` (a rename, within one
 * file system), so that no path under `root` is long; fs.rm can then remove the tree. Entry
 * types come from the directory itself: a symlink is never entered. Only for trees whose
 * container is gone (nothing else writes there any more).
 */
async function flatten(root: string): Promise<void> {
  const pending = [root];
  for (let dir = pending.pop(); dir !== undefined; dir = pending.pop()) {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      let child = path.join(dir, entry.name);
      if (Buffer.byteLength(child) > SHALLOW_BYTES) {
        const moved = path.join(root, `.dh-flat-${randomBytes(8).toString('hex')}`);
        await rename(child, moved);
        child = moved;
      }
      pending.push(child);
    }
  }
}

/**
 * Removes the owner directories of dead processes on this host and, unless `own` is false, of
 * this process; call it only once their containers are removed. Answers how many it removed.
 */
export async function removeLeftoverWorkspaces(
  root: string,
  owner: string,
  { own = true }: { own?: boolean } = {},
): Promise<number> {
  const [host, pid] = owner.split('/');
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch {
    return 0;
  }
  const stale = entries.filter((name) => {
    const m = /^(.*)-(\d+)$/.exec(name);
    if (!m || m[1] !== host) return false;
    return m[2] === pid ? own : !processAlive(Number(m[2]));
  });
  const done = await Promise.all(stale.map((name) => removeWorkspace(path.join(root, name))));
  return done.filter(Boolean).length;
}
