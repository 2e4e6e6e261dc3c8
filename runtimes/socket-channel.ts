import { randomBytes, timingSafeEqual } from 'node:crypto';
import { constants } from 'node:fs';
import { access, chmod, lstat, mkdir, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { ChannelClosedError, ConfigError } from '../core/errors.ts';
import { INIT_MOUNT } from './exec-init/install-init.ts';
import { ownerDirName, removeLeftoverWorkspaces } from './exec-workspace.ts';
import type { SandboxSpec } from './sandbox.ts';

/**
 * A function container's stdio over a unix socket instead of Docker's attach stream. The
 * attach stream carries every frame through dockerd and a containerd shim each way: two more
 * processes woken per call, about 0.2 ms of latency and 0.2 ms of their CPU per call here
 * (docs/benchmarks.md). With this channel the container starts under dh-init (bind-mounted,
 * static, any image), which connects twice to a socket the worker listens on, makes the first
 * connection its stdin and stdout and the second its stderr, and execs the runtime: frames
 * and the runtime's children's output share one stream in the order they were written, as
 * they did on the attach stream.
 *
 * Layout: `<root>/<host>-<pid>/<random>/s`, the random directory bound read-only at
 * CHANNEL_MOUNT in one container. The worker takes two connections, then closes the listener
 * and removes the directory (the container keeps its bound view of it), so nothing else can
 * connect later and nothing is left on disk; a dead worker's owner directory goes with the
 * next start's sweep, like exec workspaces.
 */
export const CHANNEL_MOUNT = '/.dockhand/run';
export const SOCKET_IN_CONTAINER = `${CHANNEL_MOUNT}/s`;
/** A unix socket's path must fit sockaddr_un's 108 bytes with its terminating NUL. */
const MAX_SOCKET_PATH = 107;
/** Longest `<random>/s` tail below an owner directory. */
const TAIL = 2 * 6 + '//s'.length;

export interface SocketChannelOptions {
  /** dh-init on the Docker engine's host (EXEC_INIT_PATH or the build's). */
  initPath: string;
  /** Directory for the sockets, at the same path on the Docker engine's host (DATA_DIR/sockets). */
  root: string;
  /** `host/pid` of this process: its sockets live in `<root>/<host>-<pid>`. */
  owner: string;
  /** How long a started container has to connect. Default 30 s. */
  connectTimeoutMs?: number;
}

export interface ContainerSockets {
  /** The runtime's stdin and stdout. */
  stdio: Socket;
  stderr: Socket;
}

/** One container's listener: start the container from `wrap(spec)`, then await `connected`. */
export interface PendingChannel {
  /** The spec run under dh-init, connected: entrypoint, cmd and the two read-only binds. */
  wrap(spec: SandboxSpec): SandboxSpec;
  /**
   * Both connections, in order; rejects when `exited` settles first or the time is up. The
   * listener and its directory are gone once this settles, either way.
   */
  connected(exited: Promise<unknown>): Promise<ContainerSockets>;
  /** Gives up before the container started: closes the listener, removes the directory. */
  abandon(): Promise<void>;
}

/** What the Docker driver is given (runtimes/docker-sandbox.ts DriverOptions.sockets). */
export interface SocketChannels {
  listen(): Promise<PendingChannel>;
  /** This process's and dead processes' socket directories on this host; call it with no container starting. */
  removeLeftovers(): Promise<number>;
}

export function createSocketChannels(options: SocketChannelOptions): SocketChannels {
  // The root and owner directories are checked once, not for every container; again after the
  // leftovers went (they take the owner directory) or after a check failed.
  let owned: Promise<string> | undefined;
  const ownerDir = () => {
    owned ??= ownDirectories(options).catch((err: unknown) => {
      owned = undefined;
      throw err;
    });
    return owned;
  };
  return {
    listen: async () => listenForContainer(options, await ownerDir()),
    removeLeftovers: () => {
      owned = undefined;
      // Same layout and rules as exec workspaces: owner directories named `<host>-<pid>`.
      return removeLeftoverWorkspaces(options.root, options.owner);
    },
  };
}

function ownerSocketDir(options: Pick<SocketChannelOptions, 'root' | 'owner'>): string {
  return path.join(options.root, ownerDirName(options.owner));
}

/**
 * Why this host cannot use socket channels, or undefined when it can: dh-init must be there
 * and executable, and the longest socket path must fit a unix socket address.
 */
export async function socketChannelUnusable(options: SocketChannelOptions): Promise<string | undefined> {
  try {
    await access(options.initPath, constants.X_OK);
  } catch {
    return `dh-init is missing at ${options.initPath} (scripts/prepare.sh builds it; needs gcc)`;
  }
  const longest = Buffer.byteLength(ownerSocketDir(options)) + TAIL;
  if (longest > MAX_SOCKET_PATH)
    return `socket paths under ${options.root} would be ${longest} bytes, past a unix socket's ${MAX_SOCKET_PATH} (a shorter DATA_DIR fixes it)`;
  return undefined;
}

/** The environment variable dh-init takes its connection token from (and removes before the exec). */
export const TOKEN_ENV = 'DOCKHAND_CHANNEL_TOKEN';
/** A hello longer than this is not dh-init's: "<64 hex> err\n" is 69 bytes. */
const MAX_HELLO = 128;
const SAME_PATH_HINT =
  "DATA_DIR and dh-init must be at the same paths on the Docker engine's host; FUNCTIONS_CHANNEL=attach does without them";

/** Makes `dir` (0711) or takes it as it is, refusing a symlink or a directory another user owns. */
async function ownDirectory(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o711 });
  const st = await lstat(dir);
  const uid = process.getuid?.();
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid))
    throw new ConfigError(
      'DATA_DIR',
      `${dir} must be a directory of this process's user, not a link or another user's: function sockets are made there.`,
    );
}

/**
 * Reads a connection's first line and hands the socket on as `io` or `err` when it carries the
 * token; anything else (a stranger on this host who found the path in /proc/net/unix, a slow or
 * garbled line) is destroyed and never counted. What follows the line stays in the socket.
 */
function introduce(socket: Socket, token: Buffer, onRole: (role: 'io' | 'err') => void): void {
  let seen = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(), 10_000);
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const nl = seen.indexOf(0x0a);
    if (nl < 0) {
      if (seen.length > MAX_HELLO) refuse();
      return;
    }
    socket.off('data', onData);
    socket.pause();
    clearTimeout(timer);
    const [given, role] = seen.subarray(0, nl).toString('latin1').split(' ');
    const ok =
      given !== undefined &&
      given.length === token.length &&
      timingSafeEqual(Buffer.from(given, 'latin1'), token) &&
      (role === 'io' || role === 'err');
    if (!ok) return refuse();
    const rest = seen.subarray(nl + 1);
    if (rest.length > 0) socket.unshift(rest);
    onRole(role as 'io' | 'err');
  };
  const refuse = () => {
    clearTimeout(timer);
    socket.destroy();
  };
  socket.on('data', onData);
  socket.once('close', () => clearTimeout(timer));
}

/** Root and owner directory, made or checked; answers the owner directory. */
async function ownDirectories(options: SocketChannelOptions): Promise<string> {
  await ownDirectory(options.root);
  const parent = ownerSocketDir(options);
  await ownDirectory(parent);
  return parent;
}

async function listenForContainer(options: SocketChannelOptions, parent: string): Promise<PendingChannel> {
  const dir = path.join(parent, randomBytes(6).toString('hex'));
  // 0711 and a 0666 socket: the container's user (65534 by default, not ours) may connect but
  // not list or change anything. Anyone on this host may connect too (the path is in
  // /proc/net/unix): only a connection that opens with this container's token is taken.
  await mkdir(dir, { mode: 0o711 });
  await chmod(dir, 0o711);
  const socketPath = path.join(dir, 's');
  const token = randomBytes(32).toString('hex');
  const tokenBytes = Buffer.from(token, 'latin1');
  const sockets: { io?: Socket; err?: Socket } = {};
  const all = new Set<Socket>();
  let onBoth: (() => void) | undefined;
  const server: Server = createServer((socket) => {
    // Errors are the channel's to report once it owns the socket; until then, ignored.
    socket.on('error', () => {});
    all.add(socket);
    socket.once('close', () => all.delete(socket));
    introduce(socket, tokenBytes, (role) => {
      if (sockets[role]) return void socket.destroy();
      sockets[role] = socket;
      if (sockets.io && sockets.err) onBoth?.();
    });
  });
  server.on('error', () => {});
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await chmod(socketPath, 0o666);
  } catch (err) {
    server.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const finish = async (keep: Socket[] = []) => {
    server.close();
    for (const socket of all) if (!keep.includes(socket)) socket.destroy();
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  };
  const timeoutMs = options.connectTimeoutMs ?? 30_000;
  return {
    wrap(spec) {
      return {
        ...spec,
        // An entrypoint of the spec's own comes first, as Docker would run it.
        entrypoint: [INIT_MOUNT],
        cmd: ['--connect', SOCKET_IN_CONTAINER, ...(spec.entrypoint ?? []), ...spec.cmd],
        env: { ...spec.env, [TOKEN_ENV]: token },
        binds: [...(spec.binds ?? []), `${options.initPath}:${INIT_MOUNT}:ro`, `${dir}:${CHANNEL_MOUNT}:ro`],
      };
    },
    async connected(exited) {
      let timer: NodeJS.Timeout | undefined;
      let keep: Socket[] = [];
      try {
        await Promise.race([
          new Promise<void>((resolve) => {
            onBoth = resolve;
            if (sockets.io && sockets.err) resolve();
          }),
          exited.then(() => {
            throw new ChannelClosedError(
              `The function container exited before connecting to its socket (dh-init could not connect or run the runtime; ${SAME_PATH_HINT}).`,
            );
          }),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () =>
                reject(
                  new ChannelClosedError(
                    `The function container did not connect to its socket within ${timeoutMs} ms (${SAME_PATH_HINT}).`,
                  ),
                ),
              timeoutMs,
            );
          }),
        ]);
        const io = { stdio: sockets.io as Socket, stderr: sockets.err as Socket };
        keep = [io.stdio, io.stderr];
        return io;
      } finally {
        clearTimeout(timer);
        await finish(keep);
      }
    },
    abandon: () => finish(),
  };
}

/**
 * FUNCTIONS_CHANNEL resolved for this process: the socket channels, or the attach stream and
 * why. `auto` takes sockets only where they can work: an engine on this host (DOCKER_HOST unset
 * or unix://), dh-init built, socket paths short enough; `socket` insists and fails start-up
 * with the reason when it cannot.
 */
export async function chooseChannel(
  mode: 'auto' | 'socket' | 'attach',
  dockerHost: string | undefined,
  options: SocketChannelOptions,
): Promise<{ sockets?: SocketChannels; reason: string }> {
  if (mode === 'attach') return { reason: 'FUNCTIONS_CHANNEL=attach' };
  const remote = dockerHost !== undefined && !dockerHost.startsWith('unix://');
  if (mode === 'auto' && remote)
    return {
      reason: `the Docker engine is not on this host (DOCKER_HOST=${dockerHost}): its containers cannot reach a socket here`,
    };
  const unusable = await socketChannelUnusable(options);
  if (unusable && mode === 'socket')
    throw new ConfigError('FUNCTIONS_CHANNEL', `FUNCTIONS_CHANNEL=socket cannot work: ${unusable}.`);
  if (unusable) return { reason: unusable };
  return { sockets: createSocketChannels(options), reason: `unix sockets under ${options.root}` };
}
