import { queueNames } from '../queues/registry.ts';
import type { RoleSpec } from './spec.ts';

/** Works every queue but the tick, and owns this machine's warm pool; one per machine with Docker. */
export const worker: RoleSpec = {
  http: 'ops',
  queues: queueNames.filter((name) => name !== 'scheduler'),
  tick: false,
};
