import { cpus } from 'node:os';
import type { Writable } from 'node:stream';
import type Docker from 'dockerode';
import { ChannelClosedError, errorCode, ValidationError } from '../core/errors.ts';
import { INIT_MOUNT } from './exec-init/install-init.ts';
import { FrameChannel } from './frame-channel.ts';
import type { Sandbox, SandboxDriver, SandboxExit, SandboxSpec } from './sandbox.ts';
import type { ContainerSockets, SocketChannels } from './socket-channel.ts';

/**
 * A hardened container with a framed stdin/stdout channel to the process inside. Functions
 * use it through the warm pool; exec requests use it directly (same hardening, other images
 * and mounts). Nothing here knows what runs inside.
 */
export const SANDBOX_LABEL = 'dockhand';
export const OWNER_LABEL = 'dockhand.owner';
/** What a container is for (`function`, `exec`): a process sweeps only its own kind while alive. */
export const KIND_LABEL = 'dockhand.kind';
const MiB = 1024 * 1024;
/**
 * Killed, and its anonymous volumes with it: an image's VOLUME lines give every container a
 * writable volume on the engine's disk (read-only root or not), which a plain removal leaves
 * behind for good. Exec runs any image, so each run would leave one, filled as it pleased.
 */
const REMOVAL = { force: true, v: true } as const;

/** Lambda's ratio: 1,769 MB buys one vCPU. Floored so a small function can still start its runtime. */
export function cpuForMemory(memoryMb: number, hostCpus = cpus().length): number {
  return Math.min(hostCpus, Math.max(0.25, memoryMb / 1769));
}

export class DockerSandbox implements Sandbox {
  readonly id: string;
  readonly channel: FrameChannel;
  readonly exited: Promise<SandboxExit>;
  readonly pid: number;
  memoryMb: number;
  #container: Docker.Container;
  #removed: Promise<void> | undefined;
  #release: (() => void) | undefined;

  /** `release` lets go of the channel's own transport (its sockets) when the sandbox is destroyed. */
  constructor(
    container: Docker.Container,
    channel: FrameChannel,
    exited: Promise<SandboxExit>,
    pid: number,
    memoryMb: number,
    release?: () => void,
  ) {
    this.id = container.id;
    this.#container = container;
    this.channel = channel;
    this.exited = exited;
    this.pid = pid;
    this.memoryMb = memoryMb;
    this.#release = release;
  }

  /** Re-sizes a running container (cgroup v1 and v2 both allow it): a generic warm container becomes a function's. */
  async resize(memoryMb: number, cpus?: number): Promise<void> {
    if (memoryMb === this.memoryMb && cpus === undefined) return;
    await resizeContainer(this.#container, memoryMb, cpus ?? cpuForMemory(memoryMb));
    this.memoryMb = memoryMb;
  }

  /** Kills and removes; idempotent, and never throws (a container already gone is fine). */
  destroy(): Promise<void> {
    this.#removed ??= (async () => {
      this.channel.close();
      this.#release?.();
      // Already gone (removed by a leftover sweep or the daemon): destroyed either way.
      await this.#container.remove(REMOVAL).catch(() => {});
    })();
    return this.#removed;
  }
}

function resizeContainer(container: Docker.Container, memoryMb: number, cpus: number) {
  return container.update({
    Memory: memoryMb * MiB,
    MemorySwap: memoryMb * MiB,
    NanoCpus: Math.round(cpus * 1e9),
  });
}

/**
 * A hardened container with plain stdio: stdin written by the caller, stdout and stderr
 * demultiplexed into the caller's sinks as they arrive (exec requests and their dh-init).
 */
export class AttachedContainer {
  readonly id: string;
  /** The container's stdin (the attach stream). */
  readonly stdin: NodeJS.WritableStream;
  /** Settles when the container's process ends, however it ends. */
  readonly exited: Promise<SandboxExit>;
  /** Settles when the attach stream has ended: all output has reached the sinks. */
  readonly ended: Promise<void>;
  memoryMb: number;
  cpus: number;
  #container: Docker.Container;
  #removed: Promise<void> | undefined;

  constructor(
    container: Docker.Container,
    io: { stdin: NodeJS.WritableStream; exited: Promise<SandboxExit>; ended: Promise<void> },
    size: { memoryMb: number; cpus: number },
  ) {
    this.id = container.id;
    this.#container = container;
    this.stdin = io.stdin;
    this.exited = io.exited;
    this.ended = io.ended;
    this.memoryMb = size.memoryMb;
    this.cpus = size.cpus;
  }

  async resize(memoryMb: number, cpus: number): Promise<void> {
    if (memoryMb === this.memoryMb && cpus === this.cpus) return;
    await resizeContainer(this.#container, memoryMb, cpus);
    this.memoryMb = memoryMb;
    this.cpus = cpus;
  }

  /** SIGKILL to the whole container; fine when it has ended already. */
  async kill(): Promise<void> {
    await this.#container.kill({ signal: 'SIGKILL' }).catch(() => {});
  }

  /** Kills and removes; idempotent, and never throws (a container already gone is fine). */
  destroy(): Promise<void> {
    this.#removed ??= (async () => {
      (this.stdin as unknown as { destroy?: () => void }).destroy?.();
      await this.#container.remove(REMOVAL).catch(() => {});
    })();
    return this.#removed;
  }
}

/** `8000` → `8000/tcp`, Docker's key for a container port. */
function portKey(port: string): string {
  return port.includes('/') ? port : `${port}/tcp`;
}

/** The hardened create options every Dockhand container gets; the spec may relax only what it names. */
function createOptions(
  spec: SandboxSpec,
  labels: Record<string, string>,
  attach: boolean,
): Docker.ContainerCreateOptions {
  const memory = spec.memoryMb * MiB;
  const network = spec.network ?? 'none';
  const user = spec.user ?? '65534:65534';
  const [uid, gid = uid] = user.split(':');
  const ports = Object.entries(spec.ports ?? {});
  if (ports.length > 0 && network === 'none')
    throw new ValidationError('ports', 'Published ports need a network; this container has none.');
  return {
    Image: spec.image,
    Cmd: spec.cmd,
    Entrypoint: spec.entrypoint,
    Env: Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`),
    Labels: { ...spec.labels, ...labels },
    User: user,
    WorkingDir: spec.workingDir ?? '/tmp',
    // Without attach (a socket channel), stdin is /dev/null and output goes nowhere but dh-init's sockets.
    OpenStdin: attach,
    StdinOnce: false,
    AttachStdin: attach,
    AttachStdout: attach,
    AttachStderr: attach,
    Tty: false,
    NetworkDisabled: network === 'none',
    ExposedPorts: ports.length ? Object.fromEntries(ports.map(([c]) => [portKey(c), {}])) : undefined,
    HostConfig: {
      NetworkMode: network,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      ReadonlyRootfs: spec.readonlyRootfs ?? true,
      // uid/gid because mode=1777 is ignored here and a root-owned /tmp is not writable by the user.
      Tmpfs: {
        '/tmp': `rw,${spec.tmpfsExec ? 'exec' : 'noexec'},nosuid,size=${spec.tmpfsMb ?? 64}m,uid=${uid},gid=${gid}`,
      },
      PidsLimit: spec.pidsLimit ?? 64,
      Memory: memory,
      MemorySwap: memory,
      NanoCpus: Math.round((spec.cpus ?? cpuForMemory(spec.memoryMb)) * 1e9),
      Ulimits:
        spec.nofile === null
          ? undefined
          : [{ Name: 'nofile', Soft: spec.nofile ?? 1024, Hard: spec.nofile ?? 1024 }],
      Binds: spec.binds,
      // Never on 0.0.0.0: a published port is for this host's own clients (the processor, a proxy).
      PortBindings: ports.length
        ? Object.fromEntries(
            ports.map(([c, h]) => [portKey(c), [{ HostIp: '127.0.0.1', HostPort: String(h) }]]),
          )
        : undefined,
      ExtraHosts: spec.extraHosts,
      // Output is captured through the attach stream or the socket; a json-file log would grow on disk forever.
      LogConfig: { Type: 'none', Config: {} },
    },
  };
}

export interface DriverOptions {
  /** Largest serialized result a function may return (MAX_RESULT_BYTES); sets the reply frame cap. Default 6 MiB. */
  maxResultBytes?: number;
  /** Label `dockhand.kind` of this driver's containers. Default `function`. */
  kind?: string;
  /**
   * Sandboxes talk over unix sockets through dh-init (runtimes/socket-channel.ts) instead of
   * Docker's attach stream. Absent: the attach stream.
   */
  sockets?: SocketChannels;
  /** Given: a socket channel that cannot be set up turns the driver to the attach stream (told once, why). */
  socketFallback?: (reason: string) => void;
}

/** Where an attached container's stdout and stderr go, chunk by chunk as they arrive. */
export interface OutputSinks {
  stdout: Writable;
  stderr: Writable;
}

export class DockerSandboxDriver implements SandboxDriver {
  readonly #docker: Docker;
  readonly #owner: string;
  readonly #kind: string;
  readonly #maxResultBytes: number | undefined;
  #sockets: SocketChannels | undefined;
  #socketFallback: ((reason: string) => void) | undefined;

  /** `owner` (`host/pid`) labels every container this process makes, so a restart can find its leftovers. */
  constructor(docker: Docker, owner: string, options: DriverOptions = {}) {
    this.#docker = docker;
    this.#owner = owner;
    this.#kind = options.kind ?? 'function';
    this.#maxResultBytes = options.maxResultBytes;
    this.#sockets = options.sockets;
    this.#socketFallback = options.socketFallback;
  }

  create(spec: SandboxSpec): Promise<DockerSandbox> {
    return this.#sockets ? this.#createOverSocket(spec, this.#sockets) : this.#createAttached(spec);
  }

  /**
   * With `socketFallback` (FUNCTIONS_CHANNEL=auto), a socket channel that cannot be set up (the
   * engine does not see DATA_DIR or dh-init at this process's paths: a worker in a container
   * without the same-path mounts, an engine in a VM) turns this driver to the attach stream for
   * good, once, instead of failing every function start.
   */
  async #createOverSocket(spec: SandboxSpec, sockets: SocketChannels): Promise<DockerSandbox> {
    try {
      return await this.#createConnected(spec, sockets);
    } catch (err) {
      const fallBack = this.#socketFallback;
      if (!fallBack || !(err instanceof ChannelClosedError)) throw err;
      if (this.#sockets) {
        this.#sockets = undefined;
        fallBack(err.message);
      }
      return this.#createAttached(spec);
    }
  }

  /** The image's own ENTRYPOINT, which Docker would have run before the command. */
  async #imageEntrypoint(image: string): Promise<string[]> {
    try {
      const entrypoint = (await this.#docker.getImage(image).inspect()).Config?.Entrypoint as
        | string[]
        | string
        | null
        | undefined;
      return typeof entrypoint === 'string' ? [entrypoint] : (entrypoint ?? []);
    } catch {
      // Missing: the create below says so in its own words.
      return [];
    }
  }

  #newChannel(input: Writable, spec: SandboxSpec): FrameChannel {
    return new FrameChannel(input, { rawCap: spec.rawOutputCap, maxResultBytes: this.#maxResultBytes });
  }

  async #sandbox(
    container: Docker.Container,
    channel: FrameChannel,
    exited: Promise<SandboxExit>,
    spec: SandboxSpec,
    release?: () => void,
  ): Promise<DockerSandbox> {
    try {
      const info = await container.inspect();
      return new DockerSandbox(container, channel, exited, info.State.Pid, spec.memoryMb, release);
    } catch (err) {
      release?.();
      await container.remove(REMOVAL).catch(() => {});
      throw err;
    }
  }

  /** dh-init connects the runtime's stdio to a socket this process listens on. */
  async #createConnected(spec: SandboxSpec, sockets: SocketChannels): Promise<DockerSandbox> {
    const entrypoint = spec.entrypoint ?? (await this.#imageEntrypoint(spec.image));
    const pending = await sockets.listen();
    const { container, wait } = await this.#launch(pending.wrap({ ...spec, entrypoint })).catch(
      async (err: unknown) => {
        await pending.abandon();
        // The engine could not run dh-init from where it was bound: the socket's setup failed.
        const message = err instanceof Error ? err.message : String(err);
        if (message.includes(INIT_MOUNT))
          throw new ChannelClosedError(`The function container could not start dh-init: ${message}`);
        throw err;
      },
    );
    let channel: FrameChannel | undefined;
    const exited = wait(() => channel?.close());
    let io: ContainerSockets;
    try {
      io = await pending.connected(exited);
    } catch (err) {
      await container.remove(REMOVAL).catch(() => {});
      throw err;
    }
    const framed = this.#newChannel(io.stdio, spec);
    channel = framed;
    const closed = () => framed.close();
    io.stdio.on('data', (chunk: Buffer) => framed.stdout.write(chunk));
    // Only stdio's end closes the channel: a runtime may close its stderr and go on, as it could
    // on the attach stream.
    io.stdio.on('end', closed);
    io.stdio.on('error', closed);
    io.stderr.on('data', (chunk: Buffer) => framed.stderr.write(chunk));
    // Paused while their first line was checked (runtimes/socket-channel.ts).
    io.stdio.resume();
    io.stderr.resume();
    const release = () => {
      io.stdio.destroy();
      io.stderr.destroy();
    };
    return this.#sandbox(container, framed, exited, spec, release);
  }

  async #createAttached(spec: SandboxSpec): Promise<DockerSandbox> {
    let channel: FrameChannel | undefined;
    const { container, wait } = await this.#launch(spec, (stream) => {
      channel = this.#newChannel(stream as unknown as Writable, spec);
      this.#docker.modem.demuxStream(stream, channel.stdout, channel.stderr);
      stream.on('end', () => channel?.close());
      stream.on('error', () => channel?.close());
    });
    const framed = channel as unknown as FrameChannel;
    const exited = wait(() => framed.close());
    return this.#sandbox(container, framed, exited, spec);
  }

  /** A started container whose stdout and stderr go to `sinks` and whose stdin is the caller's. */
  async createAttached(spec: SandboxSpec, sinks: OutputSinks): Promise<AttachedContainer> {
    let ended!: Promise<void>;
    let stdin!: NodeJS.ReadWriteStream;
    const { container, wait } = await this.#launch(spec, (stream) => {
      stdin = stream;
      this.#docker.modem.demuxStream(stream, sinks.stdout, sinks.stderr);
      ended = new Promise<void>((resolve) => {
        stream.on('end', resolve);
        stream.on('close', resolve);
        stream.on('error', () => resolve());
      });
    });
    return new AttachedContainer(
      container,
      { stdin, exited: wait(), ended },
      { memoryMb: spec.memoryMb, cpus: spec.cpus ?? cpuForMemory(spec.memoryMb) },
    );
  }

  /**
   * Creates, attaches when `wire` is given (before start, so no output is lost) and starts;
   * removes the container when any step fails. `wait` gives the exit, `beforeInspect` running
   * as soon as it is known.
   */
  async #launch(spec: SandboxSpec, wire?: (stream: NodeJS.ReadWriteStream) => void) {
    const container = await this.#docker.createContainer(
      createOptions(
        spec,
        { [SANDBOX_LABEL]: '1', [OWNER_LABEL]: this.#owner, [KIND_LABEL]: this.#kind },
        wire !== undefined,
      ),
    );
    try {
      if (wire) {
        const stream = (await container.attach({
          stream: true,
          stdin: true,
          stdout: true,
          stderr: true,
          hijack: true,
        })) as NodeJS.ReadWriteStream;
        wire(stream);
      }
      await container.start();
    } catch (err) {
      // The create's own error is what the caller needs; removal is best effort.
      await container.remove(REMOVAL).catch(() => {});
      throw err;
    }
    const wait = (beforeInspect?: () => void): Promise<SandboxExit> =>
      container.wait().then(
        async (status: { StatusCode: number }) => {
          beforeInspect?.();
          // Removed before it could be inspected: the exit code is all we get.
          const info = await container.inspect().catch(() => undefined);
          return { exitCode: status.StatusCode, oomKilled: info?.State.OOMKilled ?? false };
        },
        () => {
          beforeInspect?.();
          return { exitCode: -1, oomKilled: false };
        },
      );
    return { container, wait };
  }

  /**
   * Removes this process's containers of this driver's kind and those of dead processes on this
   * host (a crashed run): owners are `host/pid`, so two workers on one host never remove each
   * other's live containers, and a process's function pool and exec runner never each other's.
   */
  async removeLeftovers(): Promise<number> {
    const removed = await removeLeftoverContainers(this.#docker, this.#owner, { ownKind: this.#kind });
    // Sockets after containers: no container of ours is starting now (see SandboxDriver).
    await this.#sockets?.removeLeftovers().catch(() => 0);
    return removed;
  }
}

/**
 * Removes the Dockhand containers of dead processes on this host (owner `host/pid` whose pid is
 * gone), and with `ownKind` also `owner`'s own of that kind. Answers how many it removed.
 */
export async function removeLeftoverContainers(
  docker: Docker,
  owner: string,
  { ownKind }: { ownKind?: string } = {},
): Promise<number> {
  const [host, pid] = owner.split('/');
  const all = await docker.listContainers({ all: true, filters: { label: [`${SANDBOX_LABEL}=1`] } });
  const stale = all.filter((c) => {
    const [h, p] = (c.Labels[OWNER_LABEL] ?? '').split('/');
    if (h !== host) return false;
    if (p === pid) return ownKind !== undefined && (c.Labels[KIND_LABEL] ?? 'function') === ownKind;
    return !processAlive(Number(p));
  });
  await Promise.all(
    stale.map((c) =>
      docker
        .getContainer(c.Id)
        .remove(REMOVAL)
        // Removed meanwhile by another sweep: the goal is reached.
        .catch(() => {}),
    ),
  );
  return stale.length;
}

/** Whether a pid on this host is running (EPERM: it is, as another user). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errorCode(err) === 'EPERM';
  }
}
