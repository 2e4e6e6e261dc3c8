import { queueNames } from '../queues/registry.ts';
import type { RoleSpec } from './spec.ts';

/** `npm start`: one process that is gateway, worker, scheduler and bridge at once. */
export const all: RoleSpec = { http: 'api', queues: queueNames, tick: true, bridge: true };
