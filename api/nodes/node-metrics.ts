import { Gauge, type Registry } from 'prom-client';
import type { NodeRecord, NodeStatusName, NodeStore } from './node-store.ts';

const STATUSES: readonly NodeStatusName[] = ['online', 'offline', 'draining', 'drained', 'ineligible'];

/**
 * Node gauges, read from the store when Prometheus scrapes: every gateway reports the same
 * cluster-wide values (aggregate replicas with max, not sum). Per-node series are labelled
 * with the node_id, which is unique and stable (names are neither), and bounded by the store's
 * node limit. When Redis cannot be read the gauges are left empty for that scrape rather than
 * showing zeros that would read as "no nodes".
 */
export function registerNodeGauges(registry: Registry, store: NodeStore): void {
  // One read per scrape: the gauges' collect() calls start together and share it.
  let pending: Promise<{ nodes: NodeRecord[]; at: number }> | undefined;
  const snapshot = () => {
    pending ??= store
      .list()
      .then((nodes) => ({ nodes, at: store.now() }))
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };
  const perNode = (
    name: string,
    help: string,
    value: (node: NodeRecord, at: number) => number | undefined,
  ): Gauge<'node'> =>
    new Gauge({
      name,
      help,
      labelNames: ['node'],
      registers: [registry],
      async collect() {
        this.reset();
        const read = await snapshot().catch(() => undefined);
        if (!read) return;
        for (const node of read.nodes) {
          const v = value(node, read.at);
          if (v !== undefined) this.set({ node: node.id }, v);
        }
      },
    });

  new Gauge({
    name: 'dockhand_nodes',
    help: 'Registered nodes per status (online, offline, draining, drained, ineligible).',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      this.reset();
      const read = await snapshot().catch(() => undefined);
      if (!read) return;
      const counts = new Map<NodeStatusName, number>(STATUSES.map((s) => [s, 0]));
      for (const node of read.nodes) {
        const status = store.status(node, read.at);
        counts.set(status, (counts.get(status) ?? 0) + 1);
      }
      for (const [status, n] of counts) this.set({ status }, n);
    },
  });
  perNode(
    'dockhand_node_heartbeat_age_seconds',
    'Seconds since each node last sent a heartbeat (or registered), by node_id.',
    (node, at) => Math.max(0, (at - node.lastSeen) / 1000),
  );
  perNode(
    'dockhand_node_cpu_usage_percent',
    'CPU use each node reported in its last heartbeat, percent, by node_id.',
    (node) => node.metrics?.cpu_usage,
  );
  perNode(
    'dockhand_node_memory_usage_percent',
    'Memory use each node reported in its last heartbeat, percent, by node_id.',
    (node) => node.metrics?.mem_usage,
  );
}
