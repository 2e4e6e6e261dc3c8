import type { Worker } from 'bullmq';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { Config } from '../core/config.ts';
import { NodeAgent } from '../core/node-agent/agent.ts';
import { detectCapabilities } from '../core/node-agent/capabilities.ts';
import {
  type ControlPlaneClient,
  createControlPlaneClient,
  type FetchLike,
} from '../core/node-agent/control-plane.ts';
import { createIdentityStore } from '../core/node-agent/identity.ts';
import { createMetricsSampler } from '../core/node-agent/metrics-sampler.ts';
import { nodeAddress } from '../core/node-agent/node-address.ts';
import type { Gpu, HeartbeatExtras } from '../core/node-agent/protocol.ts';
import { createWorkerGate, type WorkerGate } from '../queues/worker-gate.ts';
import { listNodeContainers } from '../runtimes/node-containers.ts';

export interface NodeAgentDeps {
  config: Config;
  logger: Logger;
  /** The process's Docker client; without one (or when it does not answer) no containers are reported. */
  docker?: Docker;
  /** This process's BullMQ workers: drained, made ineligible and counted for the control plane. */
  workers: readonly Worker[];
  /** Warm containers idle and busy in this process's pool. */
  poolStats?: () => { idle: number; busy: number };
  /**
   * The port this process serves the API on, when it does: without CONTROL_PLANE_URL the agent
   * registers with its own gateway (the all-in-one server is its own control plane).
   */
  apiPort?: number;
  /** Injected for tests: the control plane transport and GPU detection. */
  fetch?: FetchLike;
  gpus?: () => Promise<Gpu[]>;
}

export interface WiredNodeAgent {
  agent: NodeAgent;
  gate: WorkerGate | undefined;
  client: ControlPlaneClient;
  /** Stops heartbeats first, then lets go of the workers (they stay as they are). Idempotent. */
  close(): Promise<void>;
}

/** `http://host:port` for a listening address: wildcards become loopback, IPv6 gets brackets. */
export function loopbackUrl(host: string, port: number): string {
  const name = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${name.includes(':') ? `[${name}]` : name}:${port}`;
}

/** Where the agent registers: CONTROL_PLANE_URL, else this process's own API, else nowhere. */
export function controlPlaneUrl(config: Config, apiPort: number | undefined): string | undefined {
  if (config.nodes.controlPlaneUrl) return config.nodes.controlPlaneUrl;
  return apiPort === undefined ? undefined : loopbackUrl(config.server.host, apiPort);
}

/**
 * The node agent of a worker process: the MIaaS agent's register + heartbeat, plus this
 * process's containers, pool and jobs, and the control plane's drain and eligibility applied to
 * its workers. Undefined (after one info line saying why) when it has nowhere to report.
 */
export function wireNodeAgent(deps: NodeAgentDeps): WiredNodeAgent | undefined {
  const { config, logger } = deps;
  if (!config.nodes.agent) {
    logger.info('Node agent off (NODE_AGENT=no).');
    return undefined;
  }
  const url = controlPlaneUrl(config, deps.apiPort);
  if (!url) {
    logger.info(
      'Node agent off: CONTROL_PLANE_URL is not set and this process serves no API to register with.',
    );
    return undefined;
  }
  const client = createControlPlaneClient({
    url,
    registrationToken: config.nodes.registrationToken,
    apiKey: config.server.apiKeys[0],
    fetch: deps.fetch,
  });
  const log = logger.child({ component: 'node-agent' });
  let agent: NodeAgent | undefined;
  const gate =
    deps.workers.length > 0
      ? createWorkerGate(deps.workers, {
          // Drained is news for the control plane: said at once, not at the next interval.
          onIdle: () => agent?.wake(),
          onError: (err) => log.warn({ err }, 'Could not pause or resume the workers.'),
        })
      : undefined;
  const { docker, poolStats } = deps;

  const collect = async (): Promise<HeartbeatExtras> => {
    // No engine, or one that does not answer: no containers, and the heartbeat still goes out.
    const running_containers = docker ? await listNodeContainers(docker).catch(() => []) : [];
    return {
      running_containers,
      ...(poolStats ? { pool: poolStats() } : {}),
      ...(gate ? { active_jobs: gate.activeJobs(), state: gate.state() } : {}),
    };
  };

  agent = new NodeAgent({
    client,
    identity: createIdentityStore(config.storage.dataDir),
    address: () => nodeAddress({ name: config.nodes.name, ip: config.nodes.ip }),
    capabilities: () => detectCapabilities({ dataDir: config.storage.dataDir, gpus: deps.gpus }),
    metrics: createMetricsSampler({ dataDir: config.storage.dataDir }),
    collect,
    onDesired: gate ? (desired) => gate.apply(desired) : undefined,
    intervalSeconds: config.nodes.heartbeatIntervalSeconds,
    log: { info: (m) => log.info(m), warn: (m) => log.warn(m) },
  });
  agent.start();

  let closing: Promise<void> | undefined;
  const started = agent;
  return {
    agent: started,
    gate,
    client,
    close() {
      closing ??= (async () => {
        await started.stop();
        gate?.close();
        await client.close();
      })();
      return closing;
    },
  };
}
