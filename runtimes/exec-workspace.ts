import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
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
  } catch {
    return false;
  }
}

/**
 * Removes the owner directories of this process and of dead processes on this host; call it
 * only once their containers are removed. Answers how many it removed.
 */
export async function removeLeftoverWorkspaces(root: string, owner: string): Promise<number> {
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
    return m[2] === pid || !processAlive(Number(m[2]));
  });
  const done = await Promise.all(stale.map((name) => removeWorkspace(path.join(root, name))));
  return done.filter(Boolean).length;
}
