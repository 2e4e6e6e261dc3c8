import type Docker from 'dockerode';
import type { RunningContainer } from '../core/node-agent/protocol.ts';
import { KIND_LABEL, SANDBOX_LABEL } from './docker-sandbox.ts';

/** Labels a sandbox may carry besides `dockhand=1`, reported as they are (the driver sets the kind). */
export { KIND_LABEL };
export const RUNTIME_LABEL = 'dockhand.runtime';
export const FUNCTION_LABEL = 'dockhand.function';
export const EXECUTION_LABEL = 'dockhand.execution';

export interface ListOptions {
  /** Seconds since the epoch; injected for tests. Default now. */
  nowSeconds?: number;
  /** A Docker engine that does not answer must not hold up a heartbeat. Default 5000 ms. */
  timeoutMs?: number;
}

function fromInfo(info: Docker.ContainerInfo, nowSeconds: number): RunningContainer {
  const labels = info.Labels ?? {};
  const optional = (key: keyof RunningContainer, label: string) =>
    typeof labels[label] === 'string' && labels[label] !== '' ? { [key]: labels[label] } : {};
  return {
    id: info.Id,
    image: info.Image,
    state: info.State,
    uptime_seconds: Math.max(0, Math.floor(nowSeconds - info.Created)),
    ...optional('kind', KIND_LABEL),
    ...optional('runtime', RUNTIME_LABEL),
    ...optional('function', FUNCTION_LABEL),
    ...optional('execution_id', EXECUTION_LABEL),
  };
}

/**
 * Dockhand's running containers on this Docker engine, every process's (label `dockhand=1`),
 * for the node's heartbeat. Rejects when the engine does not answer; the caller decides
 * whether that means "none".
 */
export async function listNodeContainers(
  docker: Docker,
  options: ListOptions = {},
): Promise<RunningContainer[]> {
  const infos = await docker.listContainers({
    filters: { label: [`${SANDBOX_LABEL}=1`] },
    abortSignal: AbortSignal.timeout(options.timeoutMs ?? 5000),
  } as Docker.ContainerListOptions);
  const now = options.nowSeconds ?? Date.now() / 1000;
  return infos.map((info) => fromInfo(info, now));
}
