import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { type Static, Type } from 'typebox';
import Value from 'typebox/value';
import { errorCode } from '../errors.ts';

export const NodeIdentity = Type.Object({
  node_id: Type.String({ minLength: 1, maxLength: 200 }),
  node_token: Type.String({ minLength: 1, maxLength: 4096 }),
  /** The control plane that issued them, without credentials: another one knows neither. */
  control_plane: Type.String({ minLength: 1 }),
});
export type NodeIdentity = Static<typeof NodeIdentity>;

export const IDENTITY_FILE = 'node-identity.json';

export interface IdentityStore {
  readonly file: string;
  /** The saved identity for this control plane; undefined when none, unreadable, or another's. */
  load(controlPlane: string): Promise<NodeIdentity | undefined>;
  /**
   * Saves a fresh registration unless another agent on the same DATA_DIR saved one for the same
   * control plane first: then that one is answered and this one dropped, so processes that
   * registered at once still end up one node.
   */
  claim(identity: NodeIdentity): Promise<NodeIdentity>;
  /** Removes the saved identity if it is still this node's (another agent may have replaced it). */
  forget(nodeId: string): Promise<void>;
}

/**
 * The node's identity in `${DATA_DIR}/node-identity.json`, mode 0600 (it holds the node's
 * bearer token), written whole or not at all (a temp file renamed or linked into place), so a
 * restart keeps the node instead of registering a second one.
 */
export function createIdentityStore(dataDir: string): IdentityStore {
  const file = path.join(dataDir, IDENTITY_FILE);

  async function read(): Promise<NodeIdentity | undefined> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const value: unknown = JSON.parse(text);
      return Value.Check(NodeIdentity, value) ? value : undefined;
    } catch {
      return undefined; // a torn or edited file: register again rather than fail
    }
  }

  async function writeTemp(identity: NodeIdentity): Promise<string> {
    await mkdir(dataDir, { recursive: true });
    const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(identity, null, 2)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    return temp;
  }

  return {
    file,
    async load(controlPlane) {
      const identity = await read();
      if (!identity || identity.control_plane !== controlPlane) return undefined;
      // A copy or restore may have widened it; the token is a credential.
      const { mode } = await stat(file);
      if (mode & 0o077) await chmod(file, 0o600);
      return identity;
    },
    async claim(identity) {
      const temp = await writeTemp(identity);
      try {
        try {
          await link(temp, file); // fails if a file is there: the first claim wins
          return identity;
        } catch (err) {
          if (errorCode(err) !== 'EEXIST') {
            await rename(temp, file); // no hard links on this filesystem: last write wins
            return identity;
          }
        }
        const existing = await read();
        if (existing && existing.control_plane === identity.control_plane) return existing;
        await rename(temp, file); // another control plane's, or unreadable: ours replaces it
        return identity;
      } finally {
        await unlink(temp).catch(() => {});
      }
    },
    async forget(nodeId) {
      const existing = await read().catch(() => undefined);
      if (existing?.node_id !== nodeId) return;
      await unlink(file).catch((err) => {
        if (errorCode(err) !== 'ENOENT') throw err;
      });
    },
  };
}
