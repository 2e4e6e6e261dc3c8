import type { RoleSpec } from './spec.ts';

/** Keeps the repeatable tick and runs its handlers (batch discovery); one is enough, more are harmless. */
export const scheduler: RoleSpec = { http: 'ops', queues: ['scheduler'], tick: true };
