import { type Logger, type LoggerOptions, pino } from 'pino';
import type { Config } from '../core/config.ts';
import { ConfigError } from '../core/errors.ts';
import { createDocker } from './docker-client.ts';
import { type NodeAgentDeps, wireNodeAgent } from './wire-node-agent.ts';

export interface AgentRoleOptions {
  /** pino options; default silent (tests). The CLI passes the configured level. */
  logger?: LoggerOptions;
  /** Injected for tests: the control plane transport and GPU detection. */
  fetch?: NodeAgentDeps['fetch'];
  gpus?: NodeAgentDeps['gpus'];
}

export interface RunningAgent {
  role: 'agent';
  url?: undefined;
  log: Logger;
  /** The node id once registered (or loaded from DATA_DIR). */
  nodeId(): string | undefined;
  close(): Promise<void>;
}

/**
 * `dockhand agent`: the MIaaS agent on its own, for a machine that runs no Dockhand worker.
 * Registers and sends heartbeats with the machine's metrics; needs no Redis, and Docker only to
 * list Dockhand's containers (none when it is not there).
 */
export async function startAgentRole(config: Config, options: AgentRoleOptions = {}): Promise<RunningAgent> {
  if (!config.nodes.controlPlaneUrl) {
    throw new ConfigError(
      'CONTROL_PLANE_URL',
      'The agent role needs CONTROL_PLANE_URL, the control plane to register with (e.g. http://control-plane:3000).',
    );
  }
  const log = pino(options.logger ?? { level: 'silent' });
  const wired = wireNodeAgent({
    // NODE_AGENT=no turns the agent off in workers; asking for the agent role asks for it.
    config: { ...config, nodes: { ...config.nodes, agent: true } },
    logger: log,
    docker: createDocker(config.docker.host),
    workers: [],
    fetch: options.fetch,
    gpus: options.gpus,
  });
  if (!wired) throw new Error('unreachable: the agent role always has a control plane URL');
  return { role: 'agent', log, nodeId: () => wired.agent.nodeId, close: () => wired.close() };
}
