import type { Frame } from './frame-channel.ts';

/**
 * The container layer's seam: a driver gives a ready sandbox; a sandbox runs frames and is
 * destroyed. The warm pool, the invoker and exec depend only on this; Docker is one driver
 * (runtimes/docker-sandbox.ts), a plain-object fake is another (the pool's unit tests).
 */
export interface SandboxSpec {
  image: string;
  cmd: string[];
  memoryMb: number;
  /** `none` (default): only loopback. Else a Docker network: functions with egress get EGRESS_NETWORK (egress-network.ts). */
  network?: string;
  env?: Record<string, string>;
  labels?: Record<string, string>;
  /** Size of the tmpfs /tmp, MiB. Default 64. */
  tmpfsMb?: number;
  /** Processes and threads; node needs about 7 idle. Default 64. */
  pidsLimit?: number;
  /** Read-only or read-write bind mounts, `host:container[:ro]` (exec workspaces). */
  binds?: string[];
  /** Bytes of unframed output tolerated between two takeRaw() calls. Default 1 MiB. */
  rawOutputCap?: number;
  /** Replaces the image's ENTRYPOINT (exec: the bind-mounted dh-init). Default: the image's. */
  entrypoint?: string[];
  /** `uid[:gid]`. Default 65534:65534. */
  user?: string;
  /** Default true; /tmp (tmpfs) and the binds stay writable either way. */
  readonlyRootfs?: boolean;
  /** Default /tmp. */
  workingDir?: string;
  /** Container port[/proto] → host port, published on 127.0.0.1 only. Needs a network. */
  ports?: Record<string, string | number>;
  /** `name:ip` lines added to /etc/hosts, e.g. `host.docker.internal:host-gateway`. */
  extraHosts?: string[];
  /** CPU quota in CPUs. Default: cpuForMemory(memoryMb), Lambda's ratio. */
  cpus?: number;
  /** Programs may run from /tmp. Default false (functions never need it; exec images may). */
  tmpfsExec?: boolean;
  /** Open files per process; null leaves the engine's default (as `docker run`). Default 1024. */
  nofile?: number | null;
}

export interface SandboxExit {
  exitCode: number;
  oomKilled: boolean;
}

/** Where a call's output goes as it is written (live logs); never throws. */
export type OutputSink = (text: string, stream: 'stdout' | 'stderr') => void;

/** The framed stdin/stdout conversation with the process inside (runtimes/frame-channel.ts). */
export interface SandboxChannel {
  /** The next frame of this type, e.g. the bootstrap's `ready`. */
  waitFor(type: string, timeoutMs?: number): Promise<Frame>;
  /** Sends a frame and resolves with the reply to it. */
  request(message: Omit<Frame, 'id'>): Promise<Frame>;
  /** Unframed output (the handler's own prints) since the last call. */
  takeRaw(): string;
  /**
   * Also hands output to `sink` as it arrives, until unset: unframed output (still kept for
   * takeRaw) and the bootstrap's `log` frames (not kept: the reply carries the call's logs).
   */
  setOutputSink?(sink: OutputSink | undefined): void;
  /** Why the channel closed, once it has. */
  readonly closed: Error | undefined;
  /** True when it closed because the sandbox wrote past a cap (the process may still run). */
  readonly overLimit: boolean;
  close(reason?: Error): void;
}

export interface Sandbox {
  readonly id: string;
  /** The main process's pid on the host, for cgroup and network counters. */
  readonly pid: number;
  readonly memoryMb: number;
  readonly channel: SandboxChannel;
  /** Settles when the container's process ends, however it ends. */
  readonly exited: Promise<SandboxExit>;
  /** A generic warm sandbox becomes a function's: new memory limit and CPU share (default cpuForMemory). */
  resize(memoryMb: number, cpus?: number): Promise<void>;
  /** Kills and removes; idempotent, never throws. */
  destroy(): Promise<void>;
}

export interface SandboxDriver {
  create(spec: SandboxSpec): Promise<Sandbox>;
  /** Removes what this process, or a dead one on this host, left behind. Answers how many. */
  removeLeftovers(): Promise<number>;
}
