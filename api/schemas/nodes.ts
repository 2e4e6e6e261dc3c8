import { Type } from 'typebox';

/*
 * The node agent protocol. Both ends evolve apart (an old MIaaS agent, Dockhand's own agent, a
 * newer agent against an older gateway), so the request bodies accept fields they do not know
 * and the store keeps only the ones listed here; what is listed is checked strictly.
 */

/** A host name as agents send it (the MIaaS agent sends the machine's host name). */
export const NODE_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$';

export const NodeParams = Type.Object({
  id: Type.String({ format: 'uuid', description: 'A node_id as registration answered it.' }),
});

const Gpu = Type.Object(
  {
    name: Type.Optional(Type.String({ maxLength: 256 })),
    memory_mb: Type.Optional(Type.Number({ minimum: 0 })),
  },
  { additionalProperties: true, description: 'One GPU; agents may add fields (driver, uuid, …).' },
);

export const NodeCapabilities = Type.Object(
  {
    os: Type.String({ minLength: 1, maxLength: 64, description: 'linux, windows, darwin, …' }),
    cpu_count: Type.Integer({ minimum: 0, maximum: 65536, description: 'CPU cores.' }),
    mem_mb: Type.Number({ minimum: 0, description: 'Total memory, MB.' }),
    disk_mb: Type.Optional(
      Type.Number({
        minimum: 0,
        description: 'Total disk, MB (optional: some versions of the old agent did not send it).',
      }),
    ),
    gpus: Type.Optional(Type.Array(Gpu, { maxItems: 64, default: [], description: 'Default none.' })),
  },
  { additionalProperties: true, description: 'What the node has; extra fields are kept as sent.' },
);

export const NodeRegistration = Type.Object(
  {
    name: Type.String({
      pattern: NODE_NAME_PATTERN,
      description:
        'A host name: letters, digits, ., - and _ (at most 253). A node registering again under its name keeps its node_id.',
    }),
    ip: Type.String({ maxLength: 45, description: 'The node’s IPv4 or IPv6 address.' }),
    capabilities: NodeCapabilities,
  },
  { additionalProperties: true },
);

export const NodeRegistered = Type.Object({
  node_id: Type.String({ format: 'uuid' }),
  node_token: Type.String({
    description: 'Shown once: send it as Authorization: Bearer <node_token> with every heartbeat.',
  }),
  heartbeat_interval: Type.Integer({ description: 'Seconds between heartbeats the gateway expects.' }),
});

/** What a node says it is doing; the operator's wish is `desired`. */
export const ReportedState = Type.Union(
  [Type.Literal('active'), Type.Literal('draining'), Type.Literal('drained'), Type.Literal('ineligible')],
  { description: 'active, draining (finishing its jobs), drained (none left) or ineligible.' },
);

const Percent = (description: string) => Type.Number({ minimum: 0, maximum: 100, description });
const Count = Type.Integer({ minimum: 0, maximum: 1_000_000 });

/** The metrics of one heartbeat, as stored and shown: the MIaaS agent's four fields and the extensions. */
export const NodeMetrics = Type.Object({
  cpu_usage: Percent('CPU use, percent (0-100).'),
  mem_usage: Percent('Memory use, percent (0-100).'),
  disk_free_mb: Type.Number({ minimum: 0, description: 'Free disk, MB.' }),
  running_containers: Type.Array(Type.Unknown(), { maxItems: 1000, description: 'As the agent lists them.' }),
  pool: Type.Optional(
    Type.Object(
      { idle: Count, busy: Count },
      { additionalProperties: true, description: 'Warm containers idle and busy.' },
    ),
  ),
  active_jobs: Type.Optional({
    ...Type.Record(Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }), Count, {
      maxProperties: 64,
      description: 'Jobs running now, per queue.',
    }),
    // typebox's Record leaves it out: a key outside the pattern would pass, unchecked.
    additionalProperties: false,
  }),
  gpus: Type.Optional(
    Type.Array(Gpu, { maxItems: 64, description: 'Per-GPU use, as the agent reports it.' }),
  ),
});

export const Heartbeat = Type.Object(
  {
    ...NodeMetrics.properties,
    running_containers: Type.Optional(
      Type.Array(Type.Unknown(), { maxItems: 1000, default: [], description: 'Default none.' }),
    ),
    state: Type.Optional(ReportedState),
  },
  { additionalProperties: true },
);

export const DesiredState = Type.Object(
  {
    eligible: Type.Boolean({ description: 'The node may take new work.' }),
    drain: Type.Boolean({ description: 'The node should finish its jobs and take no more.' }),
  },
  { description: 'What the operator wants of the node; it learns this from each heartbeat’s answer.' },
);

export const HeartbeatAnswer = Type.Object({
  status: Type.Literal('ok'),
  node_id: Type.String({ format: 'uuid' }),
  desired: DesiredState,
  heartbeat_interval: Type.Integer({ description: 'Seconds until the next heartbeat.' }),
});

export const NodeStatus = Type.Union(
  [
    Type.Literal('online'),
    Type.Literal('offline'),
    Type.Literal('draining'),
    Type.Literal('drained'),
    Type.Literal('ineligible'),
  ],
  {
    description:
      'offline after 3 heartbeat intervals without one (whatever else holds); else draining or drained, else ineligible, else online.',
  },
);

export const NodeView = Type.Object({
  node_id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  ip: Type.String(),
  status: NodeStatus,
  capabilities: NodeCapabilities,
  metrics: Type.Optional(NodeMetrics),
  reported_state: Type.Optional(ReportedState),
  desired: DesiredState,
  registered_at: Type.String({ format: 'date-time', description: 'When it last registered.' }),
  last_seen: Type.String({ format: 'date-time', description: 'Its last heartbeat or registration.' }),
  heartbeat_age_seconds: Type.Number({ description: 'Seconds since last_seen.' }),
});

export const NodeList = Type.Object({ nodes: Type.Array(NodeView) });

export const DesiredAnswer = Type.Object({ node_id: Type.String({ format: 'uuid' }), desired: DesiredState });

export const EligibilityBody = Type.Object(
  { eligible: Type.Boolean({ description: 'false: no new work; true: new work again (and no drain).' }) },
  { additionalProperties: false },
);
