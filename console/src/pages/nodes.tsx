import { useRef, useState } from 'preact/hooks';
import type { NodeView } from '../api.ts';
import { Sparkline } from '../components/charts.tsx';
import { Empty, ErrorNote, Figure, Status } from '../components/ui.tsx';
import { mb, percent } from '../format.ts';
import { usePoll } from '../poll.ts';
import { useApi } from '../session.ts';

/** Heartbeats kept per node for the sparklines. */
const KEEP = 60;

interface Seen {
  at: string;
  cpu: number;
  mem: number;
}

export function NodesPage() {
  const api = useApi();
  const history = useRef(new Map<string, Seen[]>());
  const nodes = usePoll(async (signal) => {
    const list = await api.nodes(signal);
    for (const n of list) {
      if (!n.metrics) continue;
      const seen = history.current.get(n.node_id) ?? [];
      // One point per heartbeat, not per poll.
      if (seen.at(-1)?.at !== n.last_seen)
        seen.push({ at: n.last_seen, cpu: n.metrics.cpu_usage, mem: n.metrics.mem_usage });
      history.current.set(n.node_id, seen.slice(-KEEP));
    }
    return list;
  }, 2000);

  const counts = (status: string) => nodes.data?.filter((n) => n.status === status).length ?? 0;
  return (
    <div class="page">
      <h1>Nodes</h1>
      <ErrorNote error={nodes.error} />
      <div class="figures">
        <Figure label="online" value={counts('online')} />
        <Figure label="draining or drained" value={counts('draining') + counts('drained')} />
        <Figure label="ineligible" value={counts('ineligible')} />
        <Figure label="offline" value={counts('offline')} />
      </div>
      {nodes.data === undefined ? (
        <Empty>Loading…</Empty>
      ) : nodes.data.length === 0 ? (
        <Empty>No node has registered. Workers register themselves when NODE_AGENT is on.</Empty>
      ) : (
        <div class="node-grid">
          {nodes.data.map((n) => (
            <NodeCard
              key={n.node_id}
              node={n}
              seen={history.current.get(n.node_id) ?? []}
              onChanged={nodes.refresh}
            />
          ))}
        </div>
      )}
    </div>
  );
}

function containerLabel(c: unknown): string {
  if (c && typeof c === 'object') {
    const o = c as Record<string, unknown>;
    const parts = [o.name ?? o.id, o.kind, o.image, o.state].filter((p) => typeof p === 'string' && p);
    if (parts.length > 0) return parts.join(' · ');
  }
  return typeof c === 'string' ? c : JSON.stringify(c);
}

function NodeCard({ node, seen, onChanged }: { node: NodeView; seen: Seen[]; onChanged: () => void }) {
  const api = useApi();
  const [error, setError] = useState<unknown>(undefined);
  const m = node.metrics;
  const gpus = node.capabilities.gpus ?? [];
  const act = async (what: () => Promise<void>) => {
    setError(undefined);
    try {
      await what();
      onChanged();
    } catch (err) {
      setError(err);
    }
  };
  const titleId = `node-${node.node_id}`;
  return (
    <article class="panel node-card" aria-labelledby={titleId} data-node-name={node.name}>
      <div class="panel-head">
        <h2 id={titleId}>{node.name}</h2>
        <Status value={node.status} />
      </div>
      <p class="hint">
        {node.ip} · {node.capabilities.os} · last heartbeat {Math.round(node.heartbeat_age_seconds)} s ago
      </p>
      <dl class="caps">
        <div>
          <dt>CPUs</dt>
          <dd>{node.capabilities.cpu_count}</dd>
        </div>
        <div>
          <dt>Memory</dt>
          <dd>{mb(node.capabilities.mem_mb)}</dd>
        </div>
        <div>
          <dt>Disk</dt>
          <dd>
            {node.capabilities.disk_mb === undefined ? '—' : mb(node.capabilities.disk_mb)}
            {m ? ` (${mb(m.disk_free_mb)} free)` : ''}
          </dd>
        </div>
        <div>
          <dt>GPUs</dt>
          <dd>
            {gpus.length === 0
              ? 'none'
              : gpus.map((g) => `${g.name ?? 'GPU'}${g.memory_mb ? ` (${mb(g.memory_mb)})` : ''}`).join(', ')}
          </dd>
        </div>
      </dl>
      {m ? (
        <div class="node-live">
          <div>
            <span class="spark-label">CPU {percent(m.cpu_usage)}</span>
            <Sparkline
              values={seen.map((s) => s.cpu)}
              label={`CPU use of ${node.name} over its last heartbeats`}
            />
          </div>
          <div>
            <span class="spark-label">Memory {percent(m.mem_usage)}</span>
            <Sparkline
              values={seen.map((s) => s.mem)}
              label={`Memory use of ${node.name} over its last heartbeats`}
            />
          </div>
          {m.pool ? (
            <p class="hint">
              warm pool: {m.pool.idle} idle, {m.pool.busy} busy
              {m.active_jobs
                ? ` · jobs: ${
                    Object.entries(m.active_jobs)
                      .map(([q, n]) => `${q} ${n}`)
                      .join(', ') || 'none'
                  }`
                : ''}
            </p>
          ) : null}
        </div>
      ) : (
        <p class="hint">No heartbeat metrics yet.</p>
      )}
      <details>
        <summary>Running containers ({m?.running_containers.length ?? 0})</summary>
        {m && m.running_containers.length > 0 ? (
          <ul class="plain-list small-text">
            {m.running_containers.map((c, i) => (
              <li key={i}>{containerLabel(c)}</li>
            ))}
          </ul>
        ) : (
          <p class="hint">None.</p>
        )}
      </details>
      <div class="actions">
        <button
          type="button"
          disabled={node.desired.drain}
          onClick={() => act(() => api.drain(node.node_id))}
        >
          Drain<span class="visually-hidden"> {node.name}</span>
        </button>
        {node.desired.eligible && !node.desired.drain ? (
          <button type="button" onClick={() => act(() => api.setEligible(node.node_id, false))}>
            Make ineligible<span class="visually-hidden"> {node.name}</span>
          </button>
        ) : (
          <button type="button" onClick={() => act(() => api.setEligible(node.node_id, true))}>
            Make eligible<span class="visually-hidden"> {node.name}</span>
          </button>
        )}
      </div>
      <ErrorNote error={error} />
    </article>
  );
}
