import { ControlPlaneError, coerceError } from '../errors.ts';
import type { ControlPlaneClient } from './control-plane.ts';
import type { IdentityStore, NodeIdentity } from './identity.ts';
import type { Capabilities, Desired, HeartbeatExtras, NodeMetrics } from './protocol.ts';

/** The two levels the agent speaks at; a pino logger fits. */
export interface AgentLog {
  info(message: string): void;
  warn(message: string): void;
}

/** setTimeout/clearTimeout, injected so tests drive the loop with a fake clock. */
export interface AgentTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface NodeAgentOptions {
  client: ControlPlaneClient;
  identity: IdentityStore;
  /** Name and IP to register with (NODE_NAME / NODE_IP or found on the machine). */
  address: () => Promise<{ name: string; ip: string }>;
  capabilities: () => Promise<Capabilities>;
  metrics: () => Promise<NodeMetrics>;
  /** The host process's part of each heartbeat: containers, pool, active jobs, state. */
  collect?: () => HeartbeatExtras | Promise<HeartbeatExtras>;
  /** Called with the control plane's desired state from each heartbeat answer. */
  onDesired?: (desired: Desired) => unknown;
  /** HEARTBEAT_INTERVAL; the control plane's `heartbeat_interval` answer overrides it. */
  intervalSeconds: number;
  log: AgentLog;
  timers?: AgentTimers;
  /** Jitter source, 0 ≤ x < 1. Default Math.random. */
  random?: () => number;
  /** First retry delay after a failure; doubles per failure. Default 1000 ms. */
  backoffBaseMs?: number;
  /** Longest retry delay. Default 60 000 ms. */
  backoffMaxMs?: number;
}

/**
 * Delay before retry number `attempt` (1, 2, …): doubling from `baseMs` up to `maxMs`, half of
 * it fixed and half random, so agents that lost the control plane together do not return in step.
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

const seconds = (ms: number) => `${Number((ms / 1000).toFixed(1))}s`;
const reason = (err: unknown) => coerceError(err).message;

/**
 * The MIaaS agent's loop: register (or reuse the saved identity), then a heartbeat every
 * interval. A failure costs one log line and a backoff, never the process: a control plane
 * that forgot the node (404) or its token (401) gets a new registration; one that is down or
 * failing (5xx, no answer) gets the same heartbeat again later, since registering anew would
 * leave a second node behind when it returns.
 */
export class NodeAgent {
  readonly #o: NodeAgentOptions;
  readonly #timers: AgentTimers;
  readonly #random: () => number;
  readonly #abort = new AbortController();
  #intervalMs: number;
  #stopped = false;
  #loop: Promise<void> | undefined;
  #cancelSleep: (() => void) | undefined;
  #wakeSleep: (() => void) | undefined;
  #wakePending = false;
  #nodeId: string | undefined;

  constructor(options: NodeAgentOptions) {
    this.#o = options;
    this.#timers = options.timers ?? {
      setTimeout: (callback, ms) => setTimeout(callback, ms),
      clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
    };
    this.#random = options.random ?? Math.random;
    this.#intervalMs = options.intervalSeconds * 1000;
  }

  /** The node id in use, once registered (or loaded). */
  get nodeId(): string | undefined {
    return this.#nodeId;
  }

  /** Starts the loop; calling it again does nothing. */
  start(): void {
    this.#loop ??= this.#run().catch((err) => this.#o.log.warn(`Node agent stopped: ${reason(err)}`));
  }

  /** Sends the next heartbeat now instead of at the end of the interval (e.g. drained). */
  wake(): void {
    this.#wakePending = true;
    this.#wakeSleep?.();
  }

  /** Stops the loop: a pending wait ends and a request in flight is aborted. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    this.#cancelSleep?.();
    await this.#loop;
  }

  #sleep(ms: number, { wakeable = false } = {}): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (wakeable && this.#wakePending) {
      this.#wakePending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        this.#timers.clearTimeout(handle);
        this.#cancelSleep = undefined;
        this.#wakeSleep = undefined;
        this.#wakePending = false;
        resolve();
      };
      const handle = this.#timers.setTimeout(done, ms);
      this.#cancelSleep = done;
      if (wakeable) this.#wakeSleep = done;
    });
  }

  #retryDelay(failures: number): number {
    return backoffDelay(
      failures,
      this.#o.backoffBaseMs ?? 1000,
      this.#o.backoffMaxMs ?? 60_000,
      this.#random,
    );
  }

  #setInterval(seconds: number | undefined, announced: boolean): void {
    if (seconds === undefined || seconds * 1000 === this.#intervalMs) return;
    this.#intervalMs = seconds * 1000;
    if (announced) this.#o.log.info(`Heartbeat interval set by the control plane: ${seconds}s`);
  }

  async #loadIdentity(): Promise<NodeIdentity | undefined> {
    try {
      return await this.#o.identity.load(this.#o.client.url);
    } catch (err) {
      this.#o.log.warn(`Could not read ${this.#o.identity.file}: ${reason(err)}; registering anew`);
      return undefined;
    }
  }

  async #register(capabilities: Capabilities): Promise<NodeIdentity> {
    const { name, ip } = await this.#o.address();
    const answer = await this.#o.client.register({ name, ip, capabilities }, this.#abort.signal);
    this.#setInterval(answer.heartbeat_interval, false);
    const fresh = {
      node_id: answer.node_id,
      node_token: answer.node_token,
      control_plane: this.#o.client.url,
    };
    try {
      const kept = await this.#o.identity.claim(fresh);
      if (kept.node_id !== fresh.node_id)
        this.#o.log.info(`Another agent on this node registered first; using its Node ID: ${kept.node_id}`);
      return kept;
    } catch (err) {
      this.#o.log.warn(
        `Could not save the node identity to ${this.#o.identity.file}: ${reason(err)}; a restart will register again`,
      );
      return fresh;
    }
  }

  async #collect(): Promise<HeartbeatExtras> {
    try {
      return (await this.#o.collect?.()) ?? { running_containers: [] };
    } catch (err) {
      this.#o.log.warn(`Could not collect this node's containers and jobs: ${reason(err)}`);
      return { running_containers: [] };
    }
  }

  #desired(desired: Desired): void {
    try {
      const result = this.#o.onDesired?.(desired);
      if (result instanceof Promise)
        result.catch((err) => this.#o.log.warn(`Could not apply the desired state: ${reason(err)}`));
    } catch (err) {
      this.#o.log.warn(`Could not apply the desired state: ${reason(err)}`);
    }
  }

  async #run(): Promise<void> {
    const { log } = this.#o;
    log.info('Starting MIaaS agent...');
    const capabilities = await this.#o.capabilities();
    log.info(`Detected capabilities: ${JSON.stringify(capabilities)}`);
    let identity = await this.#loadIdentity();
    if (identity) log.info(`Using the saved node identity. Node ID: ${identity.node_id}`);
    let failures = 0; // in a row, of any kind; only a heartbeat that gets through resets it
    let registering = false;
    let announced = false;
    while (!this.#stopped) {
      if (!identity) {
        if (!registering) log.info('Registering with control plane...');
        registering = true;
        try {
          identity = await this.#register(capabilities);
          registering = false;
          log.info(`Registered successfully. Node ID: ${identity.node_id}`);
        } catch (err) {
          if (this.#stopped) break;
          const delay = this.#retryDelay(++failures);
          log.warn(`Failed to register with control plane: ${reason(err)}; retrying in ${seconds(delay)}`);
          await this.#sleep(delay);
          continue;
        }
      }
      this.#nodeId = identity.node_id;
      if (!announced) {
        log.info(`Starting heartbeat loop (interval: ${this.#intervalMs / 1000}s)`);
        announced = true;
      }
      try {
        const [metrics, extras] = await Promise.all([this.#o.metrics(), this.#collect()]);
        const answer = await this.#o.client.heartbeat(
          identity,
          { ...metrics, ...extras },
          this.#abort.signal,
        );
        failures = 0;
        log.info(
          `Heartbeat sent: CPU ${metrics.cpu_usage.toFixed(1)}%, Mem ${metrics.mem_usage.toFixed(1)}%, Disk ${metrics.disk_free_mb} MB free`,
        );
        this.#setInterval(answer.heartbeat_interval, true);
        if (answer.desired) this.#desired(answer.desired);
      } catch (err) {
        if (this.#stopped) break;
        failures++;
        if (err instanceof ControlPlaneError && err.refusesNode) {
          log.warn(`Heartbeat refused (${err.message}); registering again`);
          await this.#o.identity.forget(identity.node_id).catch(() => {});
          identity = undefined;
          // The first refusal re-registers at once; a control plane that keeps refusing is paced.
          if (failures > 1) await this.#sleep(this.#retryDelay(failures - 1));
          continue;
        }
        const delay = this.#retryDelay(failures);
        log.warn(`Heartbeat failed: ${reason(err)}; retrying in ${seconds(delay)}`);
        await this.#sleep(delay);
        continue;
      }
      await this.#sleep(this.#intervalMs, { wakeable: true });
    }
  }
}
