import type { RoleSpec } from './spec.ts';

/** The API behind a load balancer: accepts work, works none; scale it for HTTP load. */
export const gateway: RoleSpec = { http: 'api', queues: [], tick: false };
