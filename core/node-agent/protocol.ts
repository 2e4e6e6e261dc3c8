import { type Static, Type } from 'typebox';

/*
 * What the node agent sends to and reads from the control plane. The request shapes are the
 * MIaaS agent's (../shared/seeds/004_…) with Dockhand's additions marked "Extension"; the
 * answers are checked before the agent acts on them, since a control plane is another process
 * on another machine.
 */

export const Gpu = Type.Object({
  model: Type.String(),
  vendor: Type.String(),
  /** 0 when the driver does not say (nvidia-smi's `[N/A]`). */
  memory_mb: Type.Integer({ minimum: 0 }),
  driver: Type.String(),
  uuid: Type.Optional(Type.String({ description: 'Extension: the device UUID, when the driver gives one.' })),
});
export type Gpu = Static<typeof Gpu>;

export const Capabilities = Type.Object({
  os: Type.String({ description: '"linux", "windows" or "darwin" (anything else as Node names it)' }),
  cpu_count: Type.Integer({ minimum: 1 }),
  mem_mb: Type.Integer({ minimum: 0 }),
  /** Size of the filesystem holding DATA_DIR, where Dockhand keeps code, workspaces and outputs. */
  disk_mb: Type.Integer({ minimum: 0 }),
  gpus: Type.Array(Gpu),
});
export type Capabilities = Static<typeof Capabilities>;

export const RegisterRequest = Type.Object({
  name: Type.String(),
  ip: Type.String(),
  capabilities: Capabilities,
});
export type RegisterRequest = Static<typeof RegisterRequest>;

export const RegisterAnswer = Type.Object({
  node_id: Type.String({ minLength: 1, maxLength: 200 }),
  node_token: Type.String({ minLength: 1, maxLength: 4096 }),
  heartbeat_interval: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })),
});
export type RegisterAnswer = Static<typeof RegisterAnswer>;

/** One Dockhand container on this node (label `dockhand=1`). Extension: the MIaaS agent sent []. */
export const RunningContainer = Type.Object({
  id: Type.String(),
  image: Type.String(),
  state: Type.String(),
  /** Seconds since the container was created (pool containers start as they are created). */
  uptime_seconds: Type.Integer({ minimum: 0 }),
  kind: Type.Optional(Type.String({ description: 'label dockhand.kind: function, exec, …' })),
  runtime: Type.Optional(Type.String({ description: 'label dockhand.runtime' })),
  function: Type.Optional(Type.String({ description: 'label dockhand.function' })),
  execution_id: Type.Optional(Type.String({ description: 'label dockhand.execution' })),
});
export type RunningContainer = Static<typeof RunningContainer>;

export const NodeState = Type.Union([
  Type.Literal('active'),
  Type.Literal('draining'),
  Type.Literal('drained'),
  Type.Literal('ineligible'),
]);
export type NodeState = Static<typeof NodeState>;

/** The host process's part of a heartbeat; the agent adds the machine's metrics. */
export const HeartbeatExtras = Type.Object({
  running_containers: Type.Array(RunningContainer),
  pool: Type.Optional(
    Type.Object({ idle: Type.Integer({ minimum: 0 }), busy: Type.Integer({ minimum: 0 }) }),
  ),
  active_jobs: Type.Optional(Type.Record(Type.String(), Type.Integer({ minimum: 0 }))),
  state: Type.Optional(NodeState),
});
export type HeartbeatExtras = Static<typeof HeartbeatExtras>;

export const NodeMetrics = Type.Object({
  /** Percent, 0–100, one decimal. */
  cpu_usage: Type.Number({ minimum: 0, maximum: 100 }),
  mem_usage: Type.Number({ minimum: 0, maximum: 100 }),
  disk_free_mb: Type.Integer({ minimum: 0 }),
});
export type NodeMetrics = Static<typeof NodeMetrics>;

export type HeartbeatRequest = NodeMetrics & HeartbeatExtras;

export const Desired = Type.Object({ eligible: Type.Boolean(), drain: Type.Boolean() });
export type Desired = Static<typeof Desired>;

export const HeartbeatAnswer = Type.Object({
  status: Type.Optional(Type.String()),
  node_id: Type.Optional(Type.String()),
  desired: Type.Optional(Desired),
  heartbeat_interval: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })),
});
export type HeartbeatAnswer = Static<typeof HeartbeatAnswer>;
