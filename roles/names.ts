/** The process roles `dockhand <role>` accepts: read by the CLI without loading any role's code. */
export const ROLE_NAMES = ['all', 'gateway', 'worker', 'scheduler', 'bridge', 'agent'] as const;
export type Role = (typeof ROLE_NAMES)[number];
