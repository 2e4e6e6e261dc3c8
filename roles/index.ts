import type { Config } from '../core/config.ts';
import { type AgentRoleOptions, startAgentRole } from './agent.ts';
import { all } from './all.ts';
import { bridge } from './bridge.ts';
import { type RoleOptions, type RunningRole, startProcess } from './compose.ts';
import { gateway } from './gateway.ts';
import type { Role } from './names.ts';
import { scheduler } from './scheduler.ts';
import type { RoleSpec } from './spec.ts';
import { worker } from './worker.ts';

/** Roles that are not a queue-and-HTTP process: each has a start path of its own. */
const standalone = { agent: startAgentRole } as const satisfies Partial<Record<Role, unknown>>;
type StandaloneRole = keyof typeof standalone;

/** Every queue-and-HTTP process Dockhand can be (`dockhand <role>`), each a few lines in a file of its own. */
export const roles = { all, gateway, worker, scheduler, bridge } as const satisfies Record<
  Exclude<Role, StandaloneRole>,
  RoleSpec
>;
export type QueueRole = keyof typeof roles;
export type { Role, RoleOptions, RunningRole };

export function startRole(role: QueueRole, config: Config, options: RoleOptions = {}): Promise<RunningRole> {
  return startProcess(role, roles[role], config, options);
}

/** What the CLI needs of any running role: a logger, where it listens if it does, and close. */
export interface RoleProcess {
  role: Role;
  url?: string;
  log: { info(obj: object, msg: string): void; error(obj: object, msg: string): void };
  close(): Promise<void>;
}

/** Starts any role the CLI names, queue roles through startProcess, the others their own way. */
export async function startRoleProcess(
  role: Role,
  config: Config,
  options: RoleOptions & AgentRoleOptions = {},
): Promise<RoleProcess> {
  if (role in standalone) return standalone[role as StandaloneRole](config, options);
  const running = await startRole(role as QueueRole, config, options);
  return { role, url: running.url, log: running.app.log, close: running.close };
}
