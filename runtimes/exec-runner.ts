import { constants } from 'node:fs';
import { access, rmdir } from 'node:fs/promises';
import { cpus as hostCpus } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { Config } from '../core/config.ts';
import { ConfigError, ImageUnavailableError, ValidationError } from '../core/errors.ts';
import { normalizeImage, registryHost, registryOf } from '../core/image-allowlist.ts';
import type { CgroupProfiler, ResourceSample } from './cgroup-profiler.ts';
import { type AttachedContainer, DockerSandboxDriver } from './docker-sandbox.ts';
import { INIT_MOUNT } from './exec-init/install-init.ts';
import { encodeRunSpec, newNonce } from './exec-init/run-spec.ts';
import { ExecOutput, type OutputStream } from './exec-output.ts';
import { makeWorkspace, ownerDirName, removeLeftoverWorkspaces, removeWorkspace } from './exec-workspace.ts';

export { imageAllowed } from '../core/image-allowlist.ts';

/** What a container is made for; the same for warm and cold ones (docs/exec-runtime.md). */
export interface ExecSlotSpec {
  image: string;
  /** `none`, or a Docker network name (the service proxy's, say). */
  network: string;
  /** `name:ip` entries for /etc/hosts, e.g. `host.docker.internal:host-gateway`. */
  extraHosts?: string[];
  /** Container port[/proto] → host port, published on 127.0.0.1 only; needs a network. Always cold. */
  ports?: Record<string, string | number>;
  memoryMb: number;
  cpus: number;
}

export interface ExecRunSpec {
  /** Arguments after the image's ENTRYPOINT, as `docker run IMAGE ARGS…`; undefined → the image's CMD. */
  command?: string[];
  /** Replaces the image's ENTRYPOINT (`[]` clears it); with it and no command, the image's CMD is dropped, as Docker does. */
  entrypoint?: string[];
  /** Over the image's own environment. */
  env: Record<string, string>;
  /** Absolute; made when missing (where the container user may write). */
  workingDir: string;
  timeoutMs: number;
  /** Aborting kills the container at once (cancelled: true). */
  signal?: AbortSignal;
  /** Live output, as kept (never past the cap). */
  onOutput?: (chunk: string, stream: OutputStream) => void;
}

export interface ExecRunOutcome {
  /** The command's exit code (128 + signal when killed, 137 after a timeout or cancel); null when it never ran. */
  exitCode: number | null;
  timedOut: boolean;
  cancelled: boolean;
  oomKilled: boolean;
  /** stdout and stderr interleaved in arrival order, at most config.exec.maxLogBytes bytes. */
  output: string;
  truncated: boolean;
  durationMs: number;
  peakMemoryMb?: number;
  cpuPercent?: number;
  warm: boolean;
  /** One sentence when the command could not start (not found, not executable, bad working dir). */
  error?: string;
}

export interface ExecSlot {
  /** Host directory bound rw at /workspace, with input/, output/ and config/ made. */
  readonly workspace: string;
  readonly warm: boolean;
  /** Runs once. */
  run(spec: ExecRunSpec): Promise<ExecRunOutcome>;
  /** Kills and removes the container, then the workspace; idempotent, never throws. */
  release(): Promise<void>;
}

export interface ExecRunnerOptions {
  docker: Docker;
  /** `host/pid` of this process: labels containers and names workspace directories. */
  owner: string;
  config: Config['exec'];
  /** The static dh-init binary on the host (DEFAULT_INIT_PATH, built by scripts/build-exec-init.sh). */
  initPath: string;
  profiler?: Pick<CgroupProfiler, 'resetPeak' | 'sample' | 'forget'>;
  logger?: Pick<Logger, 'warn' | 'debug'>;
  /** A pull that has not finished by then fails. Default 10 minutes. */
  pullTimeoutMs?: number;
}

export interface ExecStats {
  idle: number;
  busy: number;
  images: Record<string, { idle: number; busy: number }>;
}

export const WORKSPACE_MOUNT = '/workspace';
export const EXEC_KIND = 'exec';
const IMAGE_LABEL = 'dockhand.exec.image';
const MiB = 1024 * 1024;
/** After the exit, output still in flight gets this long to arrive. */
const DRAIN_MS = 2000;

interface ImageInfo {
  id: string;
  entrypoint: string[];
  cmd: string[];
}

/** A started container with its workspace, dh-init waiting for the run spec. */
interface Prepared {
  image: string;
  info: ImageInfo;
  box: AttachedContainer;
  output: ExecOutput;
  nonce: string;
  workspace: string;
  dead: boolean;
}

/** A warm key: what its containers are made like, and whether it stays whatever the recency. */
interface WarmKey {
  spec: ExecSlotSpec;
  pinned: boolean;
}

const keyOf = (s: Pick<ExecSlotSpec, 'image' | 'network' | 'extraHosts'>) =>
  [s.image, s.network, ...[...(s.extraHosts ?? [])].sort()].join('\u0000');

const round = (x: number) => Math.round(x * 100) / 100;

/**
 * Runs exec requests: any image, the command under dh-init, a host workspace at /workspace.
 * Containers are single-use. For warm images (EXEC_WARM_IMAGES) and the most recently used
 * ones, EXEC_WARM_PER_IMAGE containers are kept created and started, dh-init waiting on stdin,
 * so a request skips create and start; others are created on demand the same way.
 */
export class ExecRunner {
  readonly #docker: Docker;
  readonly #owner: string;
  readonly #config: Config['exec'];
  readonly #initPath: string;
  readonly #profiler: ExecRunnerOptions['profiler'];
  readonly #logger: ExecRunnerOptions['logger'];
  readonly #pullTimeoutMs: number;
  readonly #driver: DockerSandboxDriver;
  /** Most recently used last; pinned keys (EXEC_WARM_IMAGES) stay whatever their place. */
  readonly #keys = new Map<string, WarmKey>();
  readonly #idle = new Map<string, Prepared[]>();
  readonly #fills = new Map<string, Promise<void>>();
  readonly #busy = new Map<Prepared, { key: string; release: () => Promise<void> }>();
  readonly #pulls = new Map<string, Promise<void>>();
  /** Containers being made (warm or cold), so close() can wait for them and remove them. */
  readonly #making = new Set<Promise<unknown>>();
  readonly #destroying = new Set<Promise<void>>();
  readonly #closer = new AbortController();
  #closed: Promise<void> | undefined;

  constructor(opts: ExecRunnerOptions) {
    this.#docker = opts.docker;
    this.#owner = opts.owner;
    this.#config = opts.config;
    this.#initPath = path.resolve(opts.initPath);
    this.#profiler = opts.profiler;
    this.#logger = opts.logger;
    this.#pullTimeoutMs = opts.pullTimeoutMs ?? 10 * 60_000;
    this.#driver = new DockerSandboxDriver(opts.docker, opts.owner, { kind: EXEC_KIND });
  }

  /** Removes what dead workers (and this one, earlier) left, then starts warming EXEC_WARM_IMAGES. */
  async start(): Promise<void> {
    try {
      await access(this.#initPath, constants.X_OK);
    } catch {
      throw new ConfigError(
        'initPath',
        `The exec init helper ${this.#initPath} is missing; scripts/prepare.sh builds it (scripts/build-exec-init.sh, needs gcc).`,
      );
    }
    // Containers first: a workspace is removed only once nothing can write into it.
    await this.#driver.removeLeftovers();
    await removeLeftoverWorkspaces(this.#config.workspaceDir, this.#owner);
    for (const image of this.#config.warmImages) {
      const spec = this.#defaultSpec(image);
      this.#keys.set(keyOf(spec), { spec, pinned: true });
      this.#refill(keyOf(spec));
    }
  }

  /** Present → done; absent → pulled (EXEC_REGISTRY_* credentials), or ImageUnavailableError. */
  async ensureImage(image: string): Promise<void> {
    await this.#imageInfo(image);
  }

  /** A container ready for one run: warm when one was waiting (no ports), else made now. */
  async acquire(spec: ExecSlotSpec, signal?: AbortSignal): Promise<ExecSlot> {
    this.#checkOpen();
    signal?.throwIfAborted();
    if (!(spec.memoryMb > 0) || !(spec.cpus > 0))
      throw new ValidationError('resources', 'Memory and CPUs must be greater than 0.');
    const withPorts = Object.keys(spec.ports ?? {}).length > 0;
    if (withPorts && spec.network === 'none')
      throw new ValidationError('container.ports', 'Published ports need a network; this request has none.');
    // The engine refuses a CPU quota over what the host has (EXEC_MAX_CPUS may be set higher).
    spec = { ...spec, cpus: Math.min(spec.cpus, hostCpus().length) };
    const info = await this.#imageInfo(spec.image);
    const key = keyOf(spec);
    let prepared: Prepared | undefined;
    if (!withPorts) {
      this.#touch(key, spec);
      prepared = await this.#takeWarm(key, info, spec);
    }
    const warm = prepared !== undefined;
    prepared ??= await this.#make(spec, info);
    const slot = this.#slot(prepared, key, warm);
    if (!withPorts) this.#refill(key);
    if (signal?.aborted || this.#closer.signal.aborted) {
      await slot.release();
      signal?.throwIfAborted();
      this.#checkOpen();
    }
    return slot;
  }

  stats(): ExecStats {
    const images: ExecStats['images'] = {};
    const entry = (image: string) => {
      images[image] ??= { idle: 0, busy: 0 };
      return images[image];
    };
    let idle = 0;
    for (const list of this.#idle.values())
      for (const p of list) {
        if (p.dead) continue;
        idle++;
        entry(p.image).idle++;
      }
    for (const p of this.#busy.keys()) entry(p.image).busy++;
    return { idle, busy: this.#busy.size, images };
  }

  /** Destroys every container and workspace this runner made; waits for those being made. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closer.abort(new Error('The exec runner is closing.'));
      await Promise.allSettled([...this.#fills.values(), ...this.#making]);
      const idle = [...this.#idle.values()].flat();
      this.#idle.clear();
      await Promise.all([
        ...idle.map((p) => this.#destroy(p)),
        ...[...this.#busy.values()].map((b) => b.release()),
      ]);
      await Promise.all([...this.#destroying]);
      await this.#driver.removeLeftovers().catch(() => 0);
      // Empty by now, unless a workspace could not go (then it stays for the next start()).
      await rmdir(path.join(this.#config.workspaceDir, ownerDirName(this.#owner))).catch(() => {});
    })();
    return this.#closed;
  }

  // --- images ---

  async #imageInfo(image: string): Promise<ImageInfo> {
    const inspect = async () => {
      const info = await this.#docker.getImage(image).inspect();
      return {
        id: info.Id,
        entrypoint: (info.Config?.Entrypoint as string[] | null | undefined) ?? [],
        cmd: (info.Config?.Cmd as string[] | null | undefined) ?? [],
      };
    };
    try {
      return await inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
    let pull = this.#pulls.get(image);
    if (!pull) {
      pull = this.#pull(image).finally(() => this.#pulls.delete(image));
      this.#pulls.set(image, pull);
    }
    await pull;
    try {
      return await inspect();
    } catch (err) {
      throw new ImageUnavailableError(image, 'the pull finished but the engine does not have it.', err);
    }
  }

  async #pull(image: string): Promise<void> {
    const ref = normalizeImage(image);
    if (!ref) throw new ImageUnavailableError(image, 'it is not an image reference.');
    // Without a tag the engine would pull every tag of the repository.
    const fromImage = /[:@]/.test(image.slice(image.lastIndexOf('/') + 1)) ? image : `${image}:latest`;
    const signal = AbortSignal.any([this.#closer.signal, AbortSignal.timeout(this.#pullTimeoutMs)]);
    let lastError: string | undefined;
    try {
      const stream = (await this.#docker.createImage({
        fromImage,
        authconfig: this.#registryAuthFor(image),
        abortSignal: signal,
      })) as NodeJS.ReadableStream;
      await new Promise<void>((resolve, reject) => {
        this.#docker.modem.followProgress(
          stream,
          (err: Error | null) => (err ? reject(err) : resolve()),
          (event: { error?: string }) => {
            if (event.error) lastError = event.error;
          },
        );
      });
    } catch (err) {
      const why = this.#closer.signal.aborted
        ? 'the runner closed during the pull.'
        : signal.aborted
          ? `the pull did not finish within ${Math.round(this.#pullTimeoutMs / 1000)} s.`
          : pullReason(err);
      throw new ImageUnavailableError(image, why, err);
    }
    if (lastError) throw new ImageUnavailableError(image, sentence(lastError));
  }

  /**
   * EXEC_REGISTRY_* credentials, only for an image of EXEC_REGISTRY_SERVER: the engine hands
   * whatever credentials it is given to whichever registry the reference names, so a request
   * for `attacker.example/x` would otherwise send them to the attacker.
   */
  #registryAuthFor(image: string): Config['exec']['registryAuth'] {
    const auth = this.#config.registryAuth;
    return auth && registryOf(image) === registryHost(auth.serveraddress) ? auth : undefined;
  }

  // --- the warm pool ---

  #defaultSpec(image: string): ExecSlotSpec {
    return {
      image,
      network: 'none',
      memoryMb: this.#config.memoryMb,
      cpus: Math.min(this.#config.maxCpus, hostCpus().length),
    };
  }

  /** Marks a key used now, sized as this request; keys past EXEC_RECENT_IMAGES lose their containers. */
  #touch(key: string, spec: ExecSlotSpec) {
    const known = this.#keys.get(key);
    this.#keys.delete(key);
    this.#keys.set(key, {
      spec: {
        image: spec.image,
        network: spec.network,
        extraHosts: spec.extraHosts,
        memoryMb: spec.memoryMb,
        cpus: spec.cpus,
      },
      pinned: known?.pinned ?? false,
    });
    const recent = [...this.#keys].filter(([, k]) => !k.pinned).map(([k]) => k);
    for (const old of recent.slice(0, Math.max(0, recent.length - this.#config.recentImages))) {
      this.#keys.delete(old);
      for (const p of this.#idle.get(old) ?? []) this.#destroy(p);
      this.#idle.delete(old);
    }
  }

  /** An idle container of this key and the image's current id (a re-tagged image's are dropped). */
  async #takeWarm(key: string, info: ImageInfo, spec: ExecSlotSpec): Promise<Prepared | undefined> {
    const list = this.#idle.get(key) ?? [];
    while (list.length > 0) {
      const p = list.shift() as Prepared;
      if (p.dead || p.info.id !== info.id) {
        this.#destroy(p);
        continue;
      }
      try {
        await p.box.resize(spec.memoryMb, spec.cpus);
        return p;
      } catch (err) {
        this.#logger?.warn({ err, image: p.image }, 'a warm exec container could not be resized; made anew');
        this.#destroy(p);
      }
    }
    return undefined;
  }

  #refill(key: string) {
    if (this.#fills.has(key) || this.#closer.signal.aborted || this.#config.warmPerImage === 0) return;
    const fill = this.#fill(key).finally(() => this.#fills.delete(key));
    this.#fills.set(key, fill);
  }

  /** One key's containers, made one at a time until EXEC_WARM_PER_IMAGE wait. */
  async #fill(key: string): Promise<void> {
    for (;;) {
      const want = this.#keys.get(key);
      if (!want || this.#closer.signal.aborted) return;
      const list = (this.#idle.get(key) ?? []).filter((p) => !p.dead);
      this.#idle.set(key, list);
      if (list.length >= this.#config.warmPerImage) return;
      let prepared: Prepared;
      try {
        prepared = await this.#make(want.spec, await this.#imageInfo(want.spec.image));
      } catch (err) {
        // Tried again on the key's next use; an error every request would be noise.
        if (!this.#closer.signal.aborted)
          this.#logger?.warn({ err, image: want.spec.image }, 'could not warm an exec container');
        return;
      }
      // Evicted (no longer recent) or closing while it was being made.
      if (!this.#keys.has(key) || this.#closer.signal.aborted) {
        // Awaited: close() waits for fills, and then for this process's workspace folder to be empty.
        await this.#destroy(prepared);
        return;
      }
      const current = this.#idle.get(key) ?? [];
      current.push(prepared);
      this.#idle.set(key, current);
    }
  }

  // --- containers ---

  #make(spec: ExecSlotSpec, info: ImageInfo): Promise<Prepared> {
    const making = this.#create(spec, info);
    this.#making.add(making);
    making.then(
      () => this.#making.delete(making),
      () => this.#making.delete(making),
    );
    return making;
  }

  async #create(spec: ExecSlotSpec, info: ImageInfo): Promise<Prepared> {
    const c = this.#config;
    const workspace = await makeWorkspace(c.workspaceDir, this.#owner);
    const nonce = newNonce();
    const output = new ExecOutput(c.maxLogBytes, nonce);
    try {
      const box = await this.#driver.createAttached(
        {
          image: info.id,
          cmd: [],
          entrypoint: [INIT_MOUNT],
          memoryMb: spec.memoryMb,
          cpus: spec.cpus,
          network: spec.network,
          extraHosts: spec.extraHosts,
          ports: spec.ports,
          user: c.user,
          readonlyRootfs: c.readonlyRootfs,
          workingDir: WORKSPACE_MOUNT,
          pidsLimit: c.pidsLimit,
          // tmpfs pages count against the memory limit, so the size only has to be large enough.
          tmpfsMb: Math.max(64, c.maxMemoryMb),
          tmpfsExec: true,
          nofile: null,
          binds: [`${this.#initPath}:${INIT_MOUNT}:ro`, `${workspace}:${WORKSPACE_MOUNT}`],
          labels: { [IMAGE_LABEL]: spec.image },
        },
        output,
      );
      const prepared: Prepared = { image: spec.image, info, box, output, nonce, workspace, dead: false };
      box.exited.then(() => {
        prepared.dead = true;
      });
      return prepared;
    } catch (err) {
      await removeWorkspace(workspace);
      throw err;
    }
  }

  /** Tracked, so close() waits for removals started without an await (eviction, a stale warm one). */
  #destroy(p: Prepared): Promise<void> {
    const removal = this.#destroyNow(p);
    this.#destroying.add(removal);
    void removal.finally(() => this.#destroying.delete(removal));
    return removal;
  }

  /** Container first, then (only once it is gone) the workspace. Never throws. */
  async #destroyNow(p: Prepared): Promise<void> {
    await p.box.destroy();
    this.#profiler?.forget(p.box.id);
    const gone = await this.#docker
      .getContainer(p.box.id)
      .inspect()
      .then(
        () => false,
        (err: { statusCode?: number }) => err.statusCode === 404,
      );
    if (!gone) {
      this.#logger?.warn(
        { container: p.box.id },
        'exec container not removed; its workspace stays for the next sweep',
      );
      return;
    }
    if (!(await removeWorkspace(p.workspace)))
      this.#logger?.warn({ workspace: p.workspace }, 'exec workspace could not be removed');
  }

  #slot(p: Prepared, key: string, warm: boolean): ExecSlot {
    let ran = false;
    let released: Promise<void> | undefined;
    const release = () => {
      released ??= (async () => {
        await this.#destroy(p);
        this.#busy.delete(p);
      })();
      return released;
    };
    this.#busy.set(p, { key, release });
    return {
      workspace: p.workspace,
      warm,
      run: (spec) => {
        if (ran) return Promise.reject(new Error('An exec slot runs one command; acquire another.'));
        ran = true;
        return this.#run(p, spec, warm);
      },
      release,
    };
  }

  async #run(p: Prepared, spec: ExecRunSpec, warm: boolean): Promise<ExecRunOutcome> {
    const base: ExecRunOutcome = {
      exitCode: null,
      timedOut: false,
      cancelled: false,
      oomKilled: false,
      output: '',
      truncated: false,
      durationMs: 0,
      warm,
    };
    if (spec.signal?.aborted) return { ...base, cancelled: true, error: 'Cancelled before it started.' };
    if (p.dead) return { ...base, error: 'The container ended before its command could start.' };
    const entrypoint = spec.entrypoint ?? p.info.entrypoint;
    const argv = [...entrypoint, ...(spec.command ?? (spec.entrypoint ? [] : p.info.cmd))];
    if (argv.length === 0)
      return {
        ...base,
        error: `The image ${p.image} has no ENTRYPOINT or CMD; the request must give a command.`,
      };
    const encoded = encodeRunSpec({ nonce: p.nonce, cwd: spec.workingDir, argv, env: spec.env });
    if ('error' in encoded) return { ...base, error: encoded.error };

    const profiler = this.#profiler;
    const id = p.box.id;
    const sample = async (): Promise<ResourceSample | null> =>
      profiler ? profiler.sample(id).catch(() => null) : null;
    if (profiler) await profiler.resetPeak(id).catch(() => false);
    const before = await sample();
    let after: ResourceSample | null = null;
    let done = false;
    let timedOut = false;
    let cancelled = false;
    const stop = async (why: 'timeout' | 'cancel') => {
      if (done || timedOut || cancelled) return;
      if (why === 'timeout') timedOut = true;
      else cancelled = true;
      after = await sample();
      await p.box.kill();
    };
    p.output.onOutput = spec.onOutput;
    const started = performance.now();
    const timer = setTimeout(() => void stop('timeout'), spec.timeoutMs);
    const onAbort = () => void stop('cancel');
    spec.signal?.addEventListener('abort', onAbort, { once: true });
    // An abort during the awaits above fired no event this listener could hear.
    if (spec.signal?.aborted) onAbort();
    let startError: string | undefined;
    p.output.control.then(async (line) => {
      if (line.kind === 'error') {
        startError = line.message;
        return;
      }
      done = true;
      after = await sample();
      // dh-init waits for this (or 5 s) before exiting, so the counters above are complete.
      p.box.stdin.write('\n');
    });
    p.box.stdin.write(encoded.bytes);
    const exit = await p.box.exited;
    const durationMs = round(performance.now() - started);
    clearTimeout(timer);
    spec.signal?.removeEventListener('abort', onAbort);
    await Promise.race([p.box.ended, delay(DRAIN_MS, undefined, { ref: false })]);
    const output = p.output.finish();
    p.output.onOutput = undefined;

    const outcome: ExecRunOutcome = {
      ...base,
      exitCode: exit.exitCode >= 0 ? exit.exitCode : null,
      timedOut,
      cancelled,
      oomKilled: exit.oomKilled,
      output,
      truncated: p.output.truncated,
      durationMs,
    };
    if (startError !== undefined) {
      outcome.error = startError.endsWith('.') ? startError : `${startError}.`;
      outcome.error = outcome.error.charAt(0).toUpperCase() + outcome.error.slice(1);
    } else if (exit.exitCode < 0) outcome.error = 'The container vanished before it reported an exit code.';
    else if (exit.exitCode === 125 && !done && !timedOut && !cancelled)
      outcome.error = 'The container could not start the command (dh-init refused the run spec).';
    const final = after as ResourceSample | null;
    if (final) {
      outcome.peakMemoryMb = round(final.memoryPeakBytes / MiB);
      if (before && durationMs > 0)
        outcome.cpuPercent = round((Math.max(0, final.cpuNs - before.cpuNs) / 1e6 / durationMs) * 100);
    }
    return outcome;
  }

  #checkOpen() {
    if (this.#closer.signal.aborted) throw new Error('The exec runner is closed.');
  }
}

/** The engine's reason for a failed pull, as one clause. */
function pullReason(err: unknown): string {
  const e = err as { json?: { message?: string }; message?: string; reason?: string };
  return sentence(e.json?.message ?? e.message ?? e.reason ?? String(err));
}

function sentence(text: string): string {
  const line = text.split('\n')[0]?.trim().slice(0, 300) ?? '';
  return line.endsWith('.') ? line : `${line}.`;
}
