import type { Config } from '../core/config.ts';
import { all } from './all.ts';
import { bridge } from './bridge.ts';
import { type RoleOptions, type RunningRole, startProcess } from './compose.ts';
import { gateway } from './gateway.ts';
import type { Role } from './names.ts';
import { scheduler } from './scheduler.ts';
import { worker } from './worker.ts';

/** Every process Dockhand can be (`dockhand <role>`), each a few lines in a file of its own. */
export const roles = { all, gateway, worker, scheduler, bridge } as const satisfies Record<Role, unknown>;
export type { Role, RoleOptions, RunningRole };

export function startRole(role: Role, config: Config, options: RoleOptions = {}): Promise<RunningRole> {
  return startProcess(role, roles[role], config, options);
}
