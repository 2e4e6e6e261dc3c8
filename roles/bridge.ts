import type { RoleSpec } from './spec.ts';

/**
 * The Exec Agent's Redis channels for its old clients: hears `exec-requests`, queues them, and
 * answers on `exec-responses`. Works no queue; two bridges answer each request once.
 */
export const bridge: RoleSpec = { http: 'ops', queues: [], tick: false, bridge: true };
