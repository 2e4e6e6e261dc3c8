import { cpus } from 'node:os';
import type Docker from 'dockerode';
import { errorCode } from '../core/errors.ts';
import { FrameChannel } from './frame-channel.ts';
import type { Sandbox, SandboxDriver, SandboxExit, SandboxSpec } from './sandbox.ts';

/**
 * A hardened container with a framed stdin/stdout channel to the process inside. Functions
 * use it through the warm pool; exec requests use it directly (same hardening, other images
 * and mounts). Nothing here knows what runs inside.
 */
export const SANDBOX_LABEL = 'dockhand';
export const OWNER_LABEL = 'dockhand.owner';
const MiB = 1024 * 1024;

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

  constructor(
    container: Docker.Container,
    channel: FrameChannel,
    exited: Promise<SandboxExit>,
    pid: number,
    memoryMb: number,
  ) {
    this.id = container.id;
    this.#container = container;
    this.channel = channel;
    this.exited = exited;
    this.pid = pid;
    this.memoryMb = memoryMb;
  }

  /** Re-sizes a running container (cgroup v1 and v2 both allow it): a generic warm container becomes a function's. */
  async resize(memoryMb: number): Promise<void> {
    if (memoryMb === this.memoryMb) return;
    await this.#container.update({
      Memory: memoryMb * MiB,
      MemorySwap: memoryMb * MiB,
      NanoCpus: Math.round(cpuForMemory(memoryMb) * 1e9),
    });
    this.memoryMb = memoryMb;
  }

  /** Kills and removes; idempotent, and never throws (a container already gone is fine). */
  destroy(): Promise<void> {
    this.#removed ??= (async () => {
      this.channel.close();
      // Already gone (removed by a leftover sweep or the daemon): destroyed either way.
      await this.#container.remove({ force: true }).catch(() => {});
    })();
    return this.#removed;
  }
}

export interface DriverOptions {
  /** Largest serialized result a function may return (MAX_RESULT_BYTES); sets the reply frame cap. Default 6 MiB. */
  maxResultBytes?: number;
}

export class DockerSandboxDriver implements SandboxDriver {
  readonly #docker: Docker;
  readonly #owner: string;
  readonly #maxResultBytes: number | undefined;

  /** `owner` (`host/pid`) labels every container this process makes, so a restart can find its leftovers. */
  constructor(docker: Docker, owner: string, options: DriverOptions = {}) {
    this.#docker = docker;
    this.#owner = owner;
    this.#maxResultBytes = options.maxResultBytes;
  }

  async create(spec: SandboxSpec): Promise<DockerSandbox> {
    const memory = spec.memoryMb * MiB;
    const container = await this.#docker.createContainer({
      Image: spec.image,
      Cmd: spec.cmd,
      Env: Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`),
      Labels: { [SANDBOX_LABEL]: '1', [OWNER_LABEL]: this.#owner, ...spec.labels },
      User: '65534:65534',
      WorkingDir: '/tmp',
      OpenStdin: true,
      StdinOnce: false,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      NetworkDisabled: (spec.network ?? 'none') === 'none',
      HostConfig: {
        NetworkMode: spec.network ?? 'none',
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
        ReadonlyRootfs: true,
        // uid/gid because mode=1777 is ignored here and a root-owned /tmp is not writable by 65534.
        Tmpfs: { '/tmp': `rw,noexec,nosuid,size=${spec.tmpfsMb ?? 64}m,uid=65534,gid=65534` },
        PidsLimit: spec.pidsLimit ?? 64,
        Memory: memory,
        MemorySwap: memory,
        NanoCpus: Math.round(cpuForMemory(spec.memoryMb) * 1e9),
        Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 1024 }],
        Binds: spec.binds,
        // Output is captured through the channel; a json-file log would grow on disk forever.
        LogConfig: { Type: 'none', Config: {} },
      },
    });
    try {
      const stream = (await container.attach({
        stream: true,
        stdin: true,
        stdout: true,
        stderr: true,
        hijack: true,
      })) as NodeJS.ReadWriteStream;
      const channel = new FrameChannel(stream as unknown as NodeJS.WritableStream as never, {
        rawCap: spec.rawOutputCap,
        maxResultBytes: this.#maxResultBytes,
      });
      this.#docker.modem.demuxStream(stream, channel.stdout, channel.stderr);
      stream.on('end', () => channel.close());
      stream.on('error', () => channel.close());
      await container.start();
      const exited = container.wait().then(
        async (status: { StatusCode: number }) => {
          channel.close();
          // Removed before it could be inspected: the exit code is all we get.
          const info = await container.inspect().catch(() => undefined);
          return { exitCode: status.StatusCode, oomKilled: info?.State.OOMKilled ?? false };
        },
        () => ({ exitCode: -1, oomKilled: false }),
      );
      const info = await container.inspect();
      return new DockerSandbox(container, channel, exited, info.State.Pid, spec.memoryMb);
    } catch (err) {
      // The create's own error is what the caller needs; removal is best effort.
      await container.remove({ force: true }).catch(() => {});
      throw err;
    }
  }

  /**
   * Removes this process's containers and those of dead processes on this host (a crashed run):
   * owners are `host/pid`, so two workers on one host never remove each other's live containers.
   */
  async removeLeftovers(): Promise<number> {
    const [host, pid] = this.#owner.split('/');
    const all = await this.#docker.listContainers({ all: true, filters: { label: [`${SANDBOX_LABEL}=1`] } });
    const stale = all.filter((c) => {
      const [h, p] = (c.Labels[OWNER_LABEL] ?? '').split('/');
      if (h !== host) return false;
      return p === pid || !processAlive(Number(p));
    });
    await Promise.all(
      stale.map((c) =>
        this.#docker
          .getContainer(c.Id)
          .remove({ force: true })
          // Removed meanwhile by another sweep: the goal is reached.
          .catch(() => {}),
      ),
    );
    return stale.length;
  }
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errorCode(err) === 'EPERM';
  }
}
