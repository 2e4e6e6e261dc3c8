import { LoadError } from '../core/errors.ts';
import type { RuntimeDef, RuntimeName } from './catalog.ts';
import type { Sandbox, SandboxDriver } from './sandbox.ts';

/** What the pool needs to know of a function to give it a ready sandbox. */
export interface FunctionImage {
  name: string;
  /** Changes with every deploy: containers loaded with an older version are never reused. */
  version: string;
  runtime: RuntimeName;
  handler: string;
  memoryMb: number;
  /** `none`, or the Docker network to join (EGRESS_NETWORK for functions with egress). */
  network: string;
  env: Record<string, string>;
  /** Maximum invocations running at once; more wait their turn. */
  concurrency: number;
  /** Code, path → base64; fetched only when a container needs loading. */
  loadFiles(): Promise<Record<string, string>>;
  /** The ARN a call names the function by (Lambda's invokedFunctionArn). */
  arn?: string;
}

export type PoolEvent = 'cold' | 'specialised' | 'warm' | 'evicted' | 'replaced' | 'expired';

export interface PoolOptions {
  driver: SandboxDriver;
  runtimes: Record<RuntimeName, RuntimeDef>;
  /** Generic containers kept started per runtime (POOL_MIN_IDLE). Default 2. */
  minIdle: number;
  /** Containers in all, generic and bound (POOL_MAX). Default 32. */
  max: number;
  /** A bound container unused this long is removed. Default 5 minutes. */
  idleTtlMs: number;
  /** Memory of a generic container until it is specialised. Default 128 MiB. */
  genericMemoryMb?: number;
  /**
   * How long loading a function's code may take (Lambda bounds its init phase at 10 s; the
   * provided runtime reports its own at 10 s, hence the grace). Default 15 s.
   */
  loadTimeoutMs?: number;
  onEvent?: (event: PoolEvent, runtime: RuntimeName) => void;
  /** A container is gone for good: whatever was kept about it (cgroup paths) can go too. */
  onDestroyed?: (sandboxId: string) => void;
}

export interface Lease {
  sandbox: Sandbox;
  /** True when a container had to be created for this call. */
  coldStart: boolean;
}

/**
 * Containers are kept per function, runtime and memory size: a power-tuning sweep runs the
 * function at other sizes, and its containers must neither take nor destroy those that serve
 * live traffic at the deployed size. Versions are checked within a key (a redeploy replaces).
 */
const poolKey = (fn: FunctionImage) => `${fn.name}\u0000${fn.runtime}\u0000${fn.memoryMb}`;

/** After an eviction that keeps `keepVersion` (none: a delete), is a container of `version` to go? */
function isStale(version: string, keepVersion: string | undefined): boolean {
  return keepVersion === undefined || (version !== keepVersion && !version.startsWith(`${keepVersion}-`));
}

interface Bound {
  sandbox: Sandbox;
  version: string;
  lastUsed: number;
}

/**
 * Fission-style warm pool. Generic containers per runtime are started ahead of need; on a
 * function's first call one is specialised (resized, code loaded) and from then on belongs to
 * that function and is reused. A container that misbehaved is destroyed, never reused; the
 * generic stock refills in the background.
 */
export class WarmPool {
  readonly #o: Required<Omit<PoolOptions, 'onEvent' | 'onDestroyed'>> &
    Pick<PoolOptions, 'onEvent' | 'onDestroyed'>;
  readonly #generic = new Map<RuntimeName, Sandbox[]>();
  readonly #starting = new Map<RuntimeName, number>();
  readonly #idle = new Map<string, Bound[]>();
  readonly #busy = new Map<string, Set<Sandbox>>();
  readonly #waiters = new Map<string, Array<() => void>>();
  /** Each function's last eviction, numbered; a lease remembers the number current when it began. */
  readonly #evictions = new Map<string, { seq: number; keepVersion: string | undefined }>();
  readonly #leasedAt = new WeakMap<Sandbox, number>();
  #seq = 0;
  /** Containers being removed (destroy() never throws). */
  readonly #removals = new Set<Promise<void>>();
  /** Calls that hold a function's slot and are still getting their container. */
  readonly #taking = new Map<string, number>();
  /** Calls waiting for a place under POOL_MAX (every container busy). */
  readonly #roomWaiters: Array<() => void> = [];
  #total = 0;
  #sweeper: NodeJS.Timeout | undefined;
  #closing = false;
  #refills = new Set<Promise<void>>();

  constructor(options: PoolOptions) {
    this.#o = { genericMemoryMb: 128, loadTimeoutMs: 15_000, ...options };
  }

  async start(): Promise<void> {
    await this.#o.driver.removeLeftovers();
    for (const runtime of Object.keys(this.#o.runtimes) as RuntimeName[]) this.#generic.set(runtime, []);
    await Promise.all((Object.keys(this.#o.runtimes) as RuntimeName[]).map((r) => this.#refill(r)));
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(30_000, this.#o.idleTtlMs)).unref();
  }

  /** Counts for gauges and tests. */
  stats() {
    const generic = Object.fromEntries([...this.#generic].map(([r, list]) => [r, list.length]));
    let idle = 0;
    for (const list of this.#idle.values()) idle += list.length;
    let busy = 0;
    for (const set of this.#busy.values()) busy += set.size;
    return { total: this.#total, generic, idleBound: idle, busy };
  }

  busyByRuntime(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [key, set] of this.#busy) {
      const runtime = key.split('\u0000')[1] ?? 'unknown';
      out[runtime] = (out[runtime] ?? 0) + set.size;
    }
    return out;
  }

  async acquire(fn: FunctionImage): Promise<Lease> {
    const key = poolKey(fn);
    const seq = this.#seq;
    await this.#slot(key, fn.concurrency);
    try {
      const lease = await this.#take(key, fn);
      this.#busySet(key).add(lease.sandbox);
      this.#leasedAt.set(lease.sandbox, seq);
      return lease;
    } catch (err) {
      this.#wake(key);
      throw err;
    } finally {
      this.#taking.set(key, (this.#taking.get(key) ?? 1) - 1);
    }
  }

  /** Gives a sandbox back: reused when healthy, destroyed (and replaced) otherwise. */
  release(fn: FunctionImage, sandbox: Sandbox, healthy: boolean): void {
    const key = poolKey(fn);
    this.#busySet(key).delete(sandbox);
    const eviction = this.#evictions.get(fn.name);
    if (
      eviction &&
      eviction.seq > (this.#leasedAt.get(sandbox) ?? 0) &&
      isStale(fn.version, eviction.keepVersion)
    ) {
      // Evicted while it was leased: its function was deleted or redeployed meanwhile.
      this.#destroy(sandbox);
    } else if (healthy && !this.#closing && !sandbox.channel.closed) {
      const list = this.#idle.get(key) ?? [];
      list.push({ sandbox, version: fn.version, lastUsed: Date.now() });
      this.#idle.set(key, list);
      // An idle container can make way for a call waiting for room.
      this.#roomWaiters.shift()?.();
    } else {
      this.#destroy(sandbox);
      this.#o.onEvent?.('replaced', fn.runtime);
      this.#background(fn.runtime);
    }
    this.#wake(key);
  }

  /**
   * Drops a function's containers after a delete (no `keepVersion`) or a redeploy (those of
   * other versions than `keepVersion`; a version's variants, `<version>-…` such as a sweep's
   * sizes, count as it): idle ones now; those leased before this call, even ones still being
   * loaded, when their call gives them back. What an earlier deploy left in /tmp goes with them.
   */
  evict(name: string, keepVersion?: string): void {
    this.#evictions.set(name, { seq: ++this.#seq, keepVersion });
    const mine = (key: string) => key.startsWith(`${name}\u0000`);
    for (const [key, list] of this.#idle) {
      if (!mine(key)) continue;
      const keep = list.filter((b) => !isStale(b.version, keepVersion));
      for (const b of list) if (!keep.includes(b)) this.#destroy(b.sandbox);
      this.#idle.set(key, keep);
    }
  }

  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#sweeper);
    for (const wake of this.#roomWaiters.splice(0)) wake();
    await Promise.all(this.#refills);
    const all: Sandbox[] = [];
    for (const list of this.#generic.values()) all.push(...list.splice(0));
    for (const list of this.#idle.values()) all.push(...list.splice(0).map((b) => b.sandbox));
    for (const set of this.#busy.values()) all.push(...set);
    await Promise.all([...all.map((s) => s.destroy()), ...this.#removals]);
    this.#total = 0;
    await this.#o.driver.removeLeftovers();
  }

  // --- internals ---

  #busySet(key: string): Set<Sandbox> {
    let set = this.#busy.get(key);
    if (!set) {
      set = new Set();
      this.#busy.set(key, set);
    }
    return set;
  }

  /**
   * Waits until the function has a free slot and takes it at once: calls still getting their
   * container (#taking) count, or several concurrent first calls would all pass and each make a
   * container.
   */
  async #slot(key: string, concurrency: number): Promise<void> {
    while (this.#busySet(key).size + (this.#taking.get(key) ?? 0) >= concurrency) {
      await new Promise<void>((resolve) => {
        const list = this.#waiters.get(key) ?? [];
        list.push(resolve);
        this.#waiters.set(key, list);
      });
    }
    this.#taking.set(key, (this.#taking.get(key) ?? 0) + 1);
  }

  #wake(key: string) {
    this.#waiters.get(key)?.shift()?.();
  }

  async #take(key: string, fn: FunctionImage): Promise<Lease> {
    const idle = this.#idle.get(key) ?? [];
    while (idle.length > 0) {
      const bound = idle.pop() as Bound;
      if (bound.version === fn.version && !bound.sandbox.channel.closed) {
        this.#o.onEvent?.('warm', fn.runtime);
        return { sandbox: bound.sandbox, coldStart: false };
      }
      this.#destroy(bound.sandbox);
    }
    // Generic containers have no network; a function with egress gets its own container.
    const generic = fn.network === 'none' ? this.#generic.get(fn.runtime)?.pop() : undefined;
    if (generic && !generic.channel.closed) {
      this.#background(fn.runtime);
      await this.#specialise(generic, fn);
      this.#o.onEvent?.('specialised', fn.runtime);
      return { sandbox: generic, coldStart: false };
    }
    if (generic) this.#destroy(generic);
    await this.#reserve();
    const sandbox = await this.#create(fn.runtime, fn.memoryMb, fn.network, { reserved: true });
    await this.#specialise(sandbox, fn);
    this.#o.onEvent?.('cold', fn.runtime);
    return { sandbox, coldStart: true };
  }

  async #specialise(sandbox: Sandbox, fn: FunctionImage): Promise<void> {
    try {
      await sandbox.resize(fn.memoryMb);
      const files = await fn.loadFiles();
      // Unbounded, a module whose top-level await never settles would hold the call (and its
      // job's lock) forever: the invocation's own deadline starts only once it is loaded.
      const limit = this.#o.loadTimeoutMs ?? 15_000;
      let timer: NodeJS.Timeout | undefined;
      const loaded = await Promise.race([
        sandbox.channel.request({ type: 'load', files, handler: fn.handler, env: fn.env }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            const message = `It did not finish loading within ${limit / 1000} s (a top-level await that never settles?).`;
            reject(
              new LoadError(`Could not load ${fn.handler}: ${message}`, {
                errorType: 'Runtime.InitTimeout',
                errorMessage: message,
              }),
            );
          }, limit);
        }),
      ]).finally(() => clearTimeout(timer));
      if (!loaded.ok) {
        const error = loaded.error as { errorType?: string; errorMessage?: string } | undefined;
        throw new LoadError(`Could not load ${fn.handler}: ${error?.errorMessage ?? 'unknown error'}`, {
          errorType: error?.errorType,
          errorMessage: error?.errorMessage,
          logs: typeof loaded.logs === 'string' ? loaded.logs : undefined,
        });
      }
    } catch (err) {
      this.#destroy(sandbox);
      this.#background(fn.runtime);
      throw err;
    }
  }

  /** `reserved`: the caller already counted this container in (see #reserve). */
  async #create(
    runtime: RuntimeName,
    memoryMb: number,
    network: string,
    { reserved = false } = {},
  ): Promise<Sandbox> {
    const def = this.#o.runtimes[runtime];
    if (!reserved) this.#total++;
    try {
      const sandbox = await this.#o.driver.create({
        image: def.image,
        cmd: def.cmd,
        memoryMb,
        network,
        tmpfsExec: def.tmpfsExec,
        labels: { 'dockhand.runtime': runtime, 'dockhand.kind': 'function' },
      });
      try {
        await sandbox.channel.waitFor('ready');
      } catch (err) {
        await sandbox.destroy();
        throw err;
      }
      void sandbox.exited.then(() => sandbox.channel.close());
      return sandbox;
    } catch (err) {
      this.#freed();
      throw err;
    }
  }

  #destroy(sandbox: Sandbox) {
    this.#freed();
    // Not awaited by the call that caused it, but by close(): a pool that closed while a
    // removal was still under way left a container listed after the process "had none".
    const removal = sandbox.destroy().finally(() => this.#removals.delete(removal));
    this.#removals.add(removal);
    this.#o.onDestroyed?.(sandbox.id);
  }

  /** A place under POOL_MAX came free: the longest-waiting call for room may take it. */
  #freed() {
    this.#total--;
    this.#roomWaiters.shift()?.();
  }

  /**
   * Counts a new container in under POOL_MAX. At the cap the least recently used idle container
   * of any function makes way, else a generic one; when every container is busy the call waits
   * for one to be released or destroyed, as a queued job waits for a worker: a momentarily full
   * pool delays a call, it never fails it.
   */
  async #reserve(): Promise<void> {
    while (this.#total >= this.#o.max) {
      if (this.#closing) throw new Error('The container pool is shutting down.');
      if (this.#evictOne()) continue;
      await new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
    }
    this.#total++;
  }

  #evictOne(): boolean {
    let oldest: { key: string; index: number; lastUsed: number } | undefined;
    for (const [key, list] of this.#idle) {
      list.forEach((b, index) => {
        if (!oldest || b.lastUsed < oldest.lastUsed) oldest = { key, index, lastUsed: b.lastUsed };
      });
    }
    if (oldest) {
      const [b] = this.#idle.get(oldest.key)?.splice(oldest.index, 1) ?? [];
      if (b) {
        this.#destroy(b.sandbox);
        this.#o.onEvent?.('evicted', oldest.key.split('\u0000')[1] as RuntimeName);
        return true;
      }
    }
    for (const list of this.#generic.values()) {
      const g = list.shift();
      if (g) {
        this.#destroy(g);
        return true;
      }
    }
    return false;
  }

  #background(runtime: RuntimeName) {
    if (this.#closing) return;
    const p = this.#refill(runtime)
      // A failed refill is retried on the next call or sweep; calls meanwhile start cold.
      .catch(() => {})
      .finally(() => this.#refills.delete(p));
    this.#refills.add(p);
  }

  async #refill(runtime: RuntimeName): Promise<void> {
    const list = this.#generic.get(runtime) ?? [];
    this.#generic.set(runtime, list);
    const need = this.#o.minIdle - list.length - (this.#starting.get(runtime) ?? 0);
    // Calls waiting for room come first: a refill never takes the place they wait for.
    const room = this.#roomWaiters.length > 0 ? 0 : Math.max(0, this.#o.max - this.#total);
    const count = Math.min(need, room);
    if (count <= 0) return;
    this.#starting.set(runtime, (this.#starting.get(runtime) ?? 0) + count);
    await Promise.all(
      Array.from({ length: count }, async () => {
        try {
          const sandbox = await this.#create(runtime, this.#o.genericMemoryMb, 'none');
          if (this.#closing) return this.#destroy(sandbox);
          list.push(sandbox);
          // A waiting call may take this one's place (it evicts generic containers last).
          this.#roomWaiters.shift()?.();
        } finally {
          this.#starting.set(runtime, (this.#starting.get(runtime) ?? 1) - 1);
        }
      }),
    );
  }

  #sweep() {
    const cutoff = Date.now() - this.#o.idleTtlMs;
    for (const [key, list] of this.#idle) {
      const keep = list.filter((b) => b.lastUsed >= cutoff && !b.sandbox.channel.closed);
      for (const b of list) {
        if (keep.includes(b)) continue;
        this.#destroy(b.sandbox);
        this.#o.onEvent?.('expired', key.split('\u0000')[1] as RuntimeName);
      }
      this.#idle.set(key, keep);
    }
    for (const [runtime, list] of this.#generic) {
      // In place: a refill under way holds this same array.
      const dead = list.filter((s) => s.channel.closed);
      if (dead.length === 0) continue;
      for (const s of dead) {
        list.splice(list.indexOf(s), 1);
        this.#destroy(s);
      }
      this.#background(runtime);
    }
  }
}
