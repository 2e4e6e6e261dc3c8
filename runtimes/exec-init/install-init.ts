import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where scripts/build-exec-init.sh puts dh-init: `.build/dh-init` in the checkout. */
export const DEFAULT_INIT_PATH = fileURLToPath(new URL('../../.build/dh-init', import.meta.url));
/** Where dh-init is bound in exec and function containers (read-only). */
export const INIT_MOUNT = '/.dockhand/init';

/**
 * Puts a copy of dh-init at `target` unless an identical one is there. The engine resolves an
 * exec container's bind mounts on its own host, so a worker running in a container binds dh-init
 * from a path both see (EXEC_INIT_PATH, under a DATA_DIR mounted at the same path), not from its
 * image. Written under a temporary name and renamed into place: workers starting together on
 * one DATA_DIR never bind a half-written file. Returns whether it wrote.
 */
export async function installInit(source: string, target: string): Promise<boolean> {
  const wanted = await readFile(source);
  const present = await readFile(target).catch(() => undefined);
  if (present?.equals(wanted)) return false;
  await mkdir(path.dirname(target), { recursive: true });
  const temporary = `${target}.${randomBytes(6).toString('hex')}`;
  try {
    await writeFile(temporary, wanted, { mode: 0o755 });
    // The mode given to writeFile is masked by the umask; dh-init must be executable by any uid.
    await chmod(temporary, 0o755);
    await rename(temporary, target);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
  return true;
}

/**
 * The dh-init containers bind: `configured` (EXEC_INIT_PATH), refreshed from the build, or the
 * build's own. A copy that fails is reported by `onError` and then missing where it is used.
 */
export async function placeInit(
  configured: string | undefined,
  onError: (err: unknown) => void,
): Promise<string> {
  const target = configured ?? DEFAULT_INIT_PATH;
  if (target !== DEFAULT_INIT_PATH) await installInit(DEFAULT_INIT_PATH, target).catch(onError);
  return target;
}
