import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, chmod, mkdir, rm } from 'node:fs/promises';
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
  return {
    listen: () => listenForContainer(options),
    // Same layout and rules as exec workspaces: owner directories named `<host>-<pid>`.
    removeLeftovers: () => removeLeftoverWorkspaces(options.root, options.owner),
  };
}

export function ownerSocketDir(options: Pick<SocketChannelOptions, 'root' | 'owner'>): string {
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
  const longest = ownerSocketDir(options).length + TAIL;
  if (longest > MAX_SOCKET_PATH)
    return `socket paths under ${options.root} would be ${longest} bytes, past a unix socket's ${MAX_SOCKET_PATH} (a shorter DATA_DIR fixes it)`;
  return undefined;
}

async function listenForContainer(options: SocketChannelOptions): Promise<PendingChannel> {
  const parent = ownerSocketDir(options);
  await mkdir(parent, { recursive: true, mode: 0o711 });
  const dir = path.join(parent, randomBytes(6).toString('hex'));
  // 0711 and a 0666 socket: the container's user (65534 by default, not ours) may connect but
  // not list or change anything; the listener is gone after the container's two connections.
  await mkdir(dir, { mode: 0o711 });
  await chmod(dir, 0o711);
  const socketPath = path.join(dir, 's');
  const accepted: Socket[] = [];
  let onBoth: (() => void) | undefined;
  const server: Server = createServer((socket) => {
    // Errors are the channel's to report once it owns the socket; until then, ignored.
    socket.on('error', () => {});
    if (accepted.length >= 2) return void socket.destroy();
    accepted.push(socket);
    if (accepted.length === 2) onBoth?.();
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
  const finish = async () => {
    server.close();
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  };
  const timeoutMs = options.connectTimeoutMs ?? 30_000;
  return {
    wrap(spec) {
      return {
        ...spec,
        // dh-init execs an absolute path; an entrypoint of the spec's own comes first, as Docker runs it.
        entrypoint: [INIT_MOUNT],
        cmd: ['--connect', SOCKET_IN_CONTAINER, ...(spec.entrypoint ?? []), ...spec.cmd],
        binds: [...(spec.binds ?? []), `${options.initPath}:${INIT_MOUNT}:ro`, `${dir}:${CHANNEL_MOUNT}:ro`],
      };
    },
    async connected(exited) {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          new Promise<void>((resolve) => {
            onBoth = resolve;
            if (accepted.length === 2) resolve();
          }),
          exited.then(() => {
            throw new ChannelClosedError(
              'The function container exited before connecting to its socket (dh-init could not connect or run the runtime).',
            );
          }),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () =>
                reject(
                  new ChannelClosedError(
                    `The function container did not connect to its socket within ${timeoutMs} ms (DATA_DIR must be at the same path on the Docker host; FUNCTIONS_CHANNEL=attach does without it).`,
                  ),
                ),
              timeoutMs,
            );
          }),
        ]);
        const [stdio, stderr] = accepted as [Socket, Socket];
        return { stdio, stderr };
      } catch (err) {
        for (const socket of accepted) socket.destroy();
        throw err;
      } finally {
        clearTimeout(timer);
        await finish();
      }
    },
    abandon: finish,
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
