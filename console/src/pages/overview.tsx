import { useMemo, useRef } from 'preact/hooks';
import type uPlot from 'uplot';
import type { AlignedData, Options } from 'uplot';
import type { ExecSummary, InvocationSummary, QueueCounts } from '../api.ts';
import { UChart } from '../components/charts.tsx';
import { Empty, ErrorNote, Figure, Panel, Status, TableWrap } from '../components/ui.tsx';
import { ago } from '../format.ts';
import { usePoll } from '../poll.ts';
import { href } from '../router.ts';
import { useApi } from '../session.ts';

/** Queue depth kept for the chart: ten minutes of samples, one every two seconds. */
const HISTORY_SAMPLES = 300;
const POLL_MS = 2000;
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];

interface Sample {
  t: number;
  depth: Record<string, number>;
  finished: number;
}

/** Invocations per second between the last two samples (the functions queue's finished jobs). */
export function ratePerSecond(samples: Sample[]): number | undefined {
  const last = samples.at(-1);
  const prev = samples.at(-2);
  if (!last || !prev || last.t <= prev.t) return undefined;
  // Kept jobs are trimmed by age and count, so the total can fall: no negative rates.
  return Math.max(0, (last.finished - prev.finished) / ((last.t - prev.t) / 1000));
}

export function OverviewPage() {
  const api = useApi();
  const history = useRef<Sample[]>([]);
  const queues = usePoll(async (signal) => {
    const answer = await api.queues(signal);
    const functions = answer.queues.find((q) => q.name === 'functions');
    history.current = [
      ...history.current.slice(-(HISTORY_SAMPLES - 1)),
      {
        t: Date.now() / 1000,
        depth: Object.fromEntries(answer.queues.map((q) => [q.name, q.waiting + q.active + q.delayed])),
        finished: functions ? functions.completed + functions.failed : 0,
      },
    ];
    return answer.queues;
  }, POLL_MS);
  const nodes = usePoll((signal) => api.nodes(signal), 5000);
  const failures = usePoll(async (signal) => {
    const [invocations, executions] = await Promise.all([
      api.invocations({ status: 'FAILED', limit: 5 }, signal),
      api.executions(30, signal),
    ]);
    return {
      invocations,
      executions: executions.filter((e) => e.status === 'failed' || e.status === 'timeout').slice(0, 5),
    };
  }, 5000);

  const rate = ratePerSecond(history.current);
  const online = nodes.data?.filter((n) => n.status === 'online').length;
  const names = queues.data?.map((q) => q.name) ?? [];
  const chartData = useMemo<AlignedData>(() => {
    const h = history.current;
    return [h.map((s) => s.t), ...names.map((n) => h.map((s) => s.depth[n] ?? 0))];
  }, [queues.data]);

  return (
    <div class="page">
      <h1>Overview</h1>
      <div class="figures">
        <Figure label="invocations / s" value={rate === undefined ? '…' : rate.toFixed(2)} />
        <Figure
          label="nodes online"
          value={nodes.data ? `${online} of ${nodes.data.length}` : '…'}
          hint={nodes.data ? undefined : 'waiting for the node list'}
        />
        <Figure
          label="jobs waiting"
          value={queues.data ? queues.data.reduce((n, q) => n + q.waiting, 0) : '…'}
        />
        <Figure
          label="jobs failed (kept)"
          value={queues.data ? queues.data.reduce((n, q) => n + q.failed, 0) : '…'}
        />
      </div>
      <ErrorNote error={queues.error} what="Queues" />
      <Panel title="Queues" id="queues">
        {queues.data ? <QueueTable queues={queues.data} /> : <Empty>Loading…</Empty>}
      </Panel>
      <Panel title="Queue depth, last minutes" id="depth">
        {names.length > 0 ? (
          <UChart
            data={chartData}
            summary={`Jobs waiting, active or delayed per queue over the last ${Math.round((history.current.length * POLL_MS) / 60000) || 1} minutes.`}
            build={(width, height) => depthChart(width, height, names)}
          />
        ) : (
          <Empty>Collecting samples…</Empty>
        )}
        <p class="hint">Sampled every 2 s while this page is open.</p>
      </Panel>
      <Panel title="Recent failures" id="failures">
        <ErrorNote error={failures.error} />
        {failures.data ? <Failures {...failures.data} /> : <Empty>Loading…</Empty>}
      </Panel>
      <Panel title="Elsewhere" id="links">
        <ul class="links">
          <li>
            <a href="/docs">API reference (/docs)</a>
          </li>
          <li>
            <a href="/admin/queues">Bull Board (/admin/queues)</a>
          </li>
          <li>
            <a href="/metrics">Prometheus metrics (/metrics)</a>
          </li>
        </ul>
      </Panel>
    </div>
  );
}

function QueueTable({ queues }: { queues: QueueCounts[] }) {
  return (
    <TableWrap label="Queues">
      <table>
        <thead>
          <tr>
            <th scope="col">Queue</th>
            <th scope="col" class="num">
              Waiting
            </th>
            <th scope="col" class="num">
              Active
            </th>
            <th scope="col" class="num">
              Delayed
            </th>
            <th scope="col" class="num">
              Failed
            </th>
            <th scope="col" class="num">
              Completed
            </th>
          </tr>
        </thead>
        <tbody>
          {queues.map((q) => (
            <tr key={q.name}>
              <th scope="row">
                {q.name}
                {q.paused ? ' (paused)' : ''}
              </th>
              <td class="num">{q.waiting}</td>
              <td class="num">{q.active}</td>
              <td class="num">{q.delayed}</td>
              <td class={`num${q.failed > 0 ? ' warn-text' : ''}`}>{q.failed}</td>
              <td class="num">{q.completed}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableWrap>
  );
}

function Failures({
  invocations,
  executions,
}: {
  invocations: InvocationSummary[];
  executions: ExecSummary[];
}) {
  if (invocations.length === 0 && executions.length === 0) return <Empty>No failures kept. </Empty>;
  return (
    <ul class="plain-list">
      {invocations.map((i) => (
        <li key={i.requestId}>
          <Status value={i.status} /> <a href={href('functions', i.functionName)}>{i.functionName}</a>{' '}
          {ago(i.createdAt)} — {i.error ?? 'failed'}
        </li>
      ))}
      {executions.map((e) => (
        <li key={e.execution_id}>
          <Status value={e.status} /> <a href={href('exec', e.execution_id)}>exec {e.image ?? ''}</a>{' '}
          {ago(e.createdAt)} {e.duration ? `after ${e.duration}` : ''} — {e.error ?? `exit ${e.exit_code}`}
        </li>
      ))}
    </ul>
  );
}

function depthChart(width: number, height: number, names: string[]): Options {
  return {
    width,
    height,
    // A fixed five-minute window: with one sample uPlot would otherwise stretch x over years.
    scales: {
      x: { time: true, range: (_u, _min, max) => [max - 300, max] },
      y: { range: (_u, _min, max) => [0, Math.max(5, max)] },
    },
    axes: [
      {
        label: 'time',
        stroke: '#444',
        space: 90,
        // Clock time only: the window is minutes long, a date under every tick is noise.
        values: (_u: uPlot, splits: number[]) =>
          splits.map((s) =>
            new Date(s * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }),
          ),
      },
      { label: 'jobs waiting + active', stroke: '#444', size: 60 },
    ],
    series: [
      {},
      ...names.map((name, i) => ({
        label: name,
        stroke: COLORS[i % COLORS.length],
        width: 2,
        value: (_u: unknown, v: number | null) => (v === null ? '—' : String(v)),
      })),
    ],
    legend: { live: false },
  };
}
