import { useState } from 'preact/hooks';
import type { BatchResult, MetricScore } from '../api.ts';
import { Empty, ErrorNote, Figure, Panel, Status, TableWrap } from '../components/ui.tsx';
import { json } from '../format.ts';
import { usePoll } from '../poll.ts';
import { href, navigate } from '../router.ts';
import { useApi } from '../session.ts';

const score = (v: number | null | undefined) => (v === null || v === undefined ? '—' : v.toFixed(1));

export function BatchesPage({ selected, params }: { selected: string | undefined; params: URLSearchParams }) {
  const api = useApi();
  const list = usePoll((signal) => api.batches(signal), 3000);
  const compare = selected === 'compare';
  const [a, setA] = useState(params.get('a') ?? '');
  const [b, setB] = useState(params.get('b') ?? '');
  const done = list.data?.filter((x) => x.status === 'done') ?? [];

  return (
    <div class="page">
      <h1>Batches</h1>
      {selected && !compare ? <ScoreCard name={selected} /> : null}
      {compare && params.get('a') && params.get('b') ? (
        <Comparison a={params.get('a') as string} b={params.get('b') as string} />
      ) : null}
      <DropForm
        onCreated={(name) => {
          list.refresh();
          navigate(href('batches', name));
        }}
      />
      <Panel title="All batches" id="batch-list">
        <ErrorNote error={list.error} />
        {list.data === undefined ? (
          <Empty>Loading…</Empty>
        ) : list.data.length === 0 ? (
          <Empty>No batches yet.</Empty>
        ) : (
          <TableWrap label="Batches">
            <table>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Status</th>
                  <th scope="col" class="num">
                    Files
                  </th>
                  <th scope="col">Note</th>
                </tr>
              </thead>
              <tbody>
                {list.data.map((x) => (
                  <tr key={x.name} class={x.name === selected ? 'selected' : ''}>
                    <th scope="row">
                      {x.status === 'done' ? <a href={href('batches', x.name)}>{x.name}</a> : x.name}
                    </th>
                    <td>
                      <Status value={x.status} />
                    </td>
                    <td class="num">{x.files.length}</td>
                    <td>{x.error ?? x.folderState}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </Panel>
      <Panel title="Compare two batches" id="compare">
        {done.length < 2 ? (
          <Empty>Two scored batches are needed.</Empty>
        ) : (
          <form
            class="form-grid"
            onSubmit={(e) => {
              e.preventDefault();
              navigate(`${href('batches', 'compare')}?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
            }}
          >
            <label for="compare-a">First</label>
            <select id="compare-a" required value={a} onChange={(e) => setA(e.currentTarget.value)}>
              <option value="">choose…</option>
              {done.map((x) => (
                <option key={x.name} value={x.name}>
                  {x.name}
                </option>
              ))}
            </select>
            <label for="compare-b">Second</label>
            <select id="compare-b" required value={b} onChange={(e) => setB(e.currentTarget.value)}>
              <option value="">choose…</option>
              {done.map((x) => (
                <option key={x.name} value={x.name}>
                  {x.name}
                </option>
              ))}
            </select>
            <div class="span-all actions">
              <button type="submit">Compare</button>
            </div>
          </form>
        )}
      </Panel>
    </div>
  );
}

function DropForm({ onCreated }: { onCreated: (name: string) => void }) {
  const api = useApi();
  const [name, setName] = useState('');
  const [files, setFiles] = useState<FileList | null>(null);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      if (!files || files.length === 0) throw new Error('Choose one or more metric files (.json).');
      const contents: Record<string, unknown> = {};
      for (const file of Array.from(files)) {
        try {
          contents[file.name] = JSON.parse(await file.text());
        } catch (err) {
          throw new Error(`${file.name} is not valid JSON: ${(err as Error).message}`);
        }
      }
      await api.createBatch(name, contents);
      onCreated(name);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Panel title="Drop a batch" id="drop">
      <form class="form-grid" onSubmit={submit}>
        <label for="batch-name">Batch name</label>
        <input
          id="batch-name"
          required
          pattern="[A-Za-z0-9][A-Za-z0-9._\-]*"
          value={name}
          onInput={(e) => setName(e.currentTarget.value)}
        />
        <label for="batch-files">Metric files</label>
        <input
          id="batch-files"
          type="file"
          multiple
          accept=".json,application/json"
          onChange={(e) => setFiles(e.currentTarget.files)}
          aria-describedby="batch-files-hint"
        />
        <span id="batch-files-hint" class="hint span-all">
          JSON files named as the scorer expects, e.g. lb_performance.json, tagging_coverage.json.
        </span>
        <div class="span-all actions">
          <button type="submit" disabled={busy}>
            {busy ? 'Uploading…' : 'Create and score'}
          </button>
        </div>
      </form>
      <ErrorNote error={error} what="Batch not created" />
    </Panel>
  );
}

function ScoreCard({ name }: { name: string }) {
  const api = useApi();
  // The result is asked for once the batch is scored: asking earlier is a 404 per poll.
  const status = usePoll(
    async (signal) => (await api.batches(signal)).find((b) => b.name === name),
    2000,
    [name],
    (b) => b?.status === 'done' || b?.status === 'failed',
  );
  const batch = status.data;
  const result = usePoll<BatchResult | undefined>(
    async () => (batch?.status === 'done' ? api.batchResult(name) : undefined),
    0,
    [name, batch?.status],
  );
  const r = result.data;
  return (
    <Panel title={`Score card: ${name}`} id="score-card">
      <ErrorNote error={status.error ?? result.error} />
      {status.data === undefined && !status.error ? <Empty>Loading…</Empty> : null}
      {batch && batch.status !== 'done' ? (
        <p class="hint" role="status">
          <Status value={batch.status} /> {batch.error ?? 'Waiting for it to be scored…'}
        </p>
      ) : null}
      {r ? (
        <div data-testid="score-card">
          <div class="figures">
            <Figure label="overall (0–5)" value={score(r.summary.overall_score)} />
            <Figure label="metrics scored" value={r.summary.scored_metrics} />
            {Object.entries(r.summary.category_scores).map(([category, value]) => (
              <Figure key={category} label={category} value={score(value)} />
            ))}
          </div>
          <h3>Per category</h3>
          <ul class="bars">
            {r.summary.breakdown.map((c) => (
              <li key={c.category}>
                <span class="bar-label">
                  {c.category} (weight {Math.round(c.weight * 100)}%)
                </span>
                <meter
                  min={0}
                  max={5}
                  low={2.5}
                  high={3.5}
                  optimum={5}
                  value={c.score}
                  aria-label={`${c.category} score`}
                >
                  {score(c.score)}
                </meter>
                <span class="bar-value">{score(c.score)}</span>
              </li>
            ))}
          </ul>
          <h3>Per metric</h3>
          <div class="metric-grid">
            {Object.values(r.metrics)
              .sort((x, y) => x.metric_id.localeCompare(y.metric_id))
              .map((m) => (
                <MetricCard key={m.metric_id} metric={m} />
              ))}
          </div>
        </div>
      ) : null}
    </Panel>
  );
}

function MetricCard({ metric }: { metric: MetricScore }) {
  const evidence = Object.entries(metric.evidence);
  return (
    <article class="metric-card" aria-labelledby={`m-${metric.metric_id}`}>
      <h4 id={`m-${metric.metric_id}`}>
        {metric.metric_id} <span class="score">{score(metric.score)}</span>
      </h4>
      <p class="hint">confidence {Math.round(metric.confidence * 100)}%</p>
      <p>{metric.rationale}</p>
      {evidence.length > 0 ? (
        <details>
          <summary>Evidence ({evidence.length})</summary>
          <dl class="evidence">
            {evidence.map(([k, v]) => (
              <div key={k}>
                <dt>{k}</dt>
                <dd>{typeof v === 'object' ? json(v) : String(v)}</dd>
              </div>
            ))}
          </dl>
        </details>
      ) : null}
      {metric.gaps.length > 0 ? (
        <>
          <p class="gaps-title">Gaps</p>
          <ul class="gaps">
            {metric.gaps.map((g) => (
              <li key={g}>{g}</li>
            ))}
          </ul>
        </>
      ) : null}
    </article>
  );
}

function Comparison({ a, b }: { a: string; b: string }) {
  const api = useApi();
  const both = usePoll(() => Promise.all([api.batchResult(a), api.batchResult(b)]), 0, [a, b]);
  const [ra, rb] = both.data ?? [];
  const ids = [...new Set([...Object.keys(ra?.metrics ?? {}), ...Object.keys(rb?.metrics ?? {})])].sort();
  const categories = [
    ...new Set([
      ...Object.keys(ra?.summary.category_scores ?? {}),
      ...Object.keys(rb?.summary.category_scores ?? {}),
    ]),
  ].sort();
  const delta = (x: number | null | undefined, y: number | null | undefined) =>
    x === null || x === undefined || y === null || y === undefined
      ? '—'
      : `${y - x >= 0 ? '+' : ''}${(y - x).toFixed(1)}`;
  return (
    <Panel title={`${a} vs ${b}`} id="comparison">
      <ErrorNote error={both.error} />
      {ra && rb ? (
        <TableWrap label="Comparison">
          <table>
            <thead>
              <tr>
                <th scope="col">Score</th>
                <th scope="col" class="num">
                  {a}
                </th>
                <th scope="col" class="num">
                  {b}
                </th>
                <th scope="col" class="num">
                  Change
                </th>
              </tr>
            </thead>
            <tbody>
              <tr class="selected">
                <th scope="row">overall</th>
                <td class="num">{score(ra.summary.overall_score)}</td>
                <td class="num">{score(rb.summary.overall_score)}</td>
                <td class="num">{delta(ra.summary.overall_score, rb.summary.overall_score)}</td>
              </tr>
              {categories.map((c) => (
                <tr key={c}>
                  <th scope="row">{c}</th>
                  <td class="num">{score(ra.summary.category_scores[c])}</td>
                  <td class="num">{score(rb.summary.category_scores[c])}</td>
                  <td class="num">{delta(ra.summary.category_scores[c], rb.summary.category_scores[c])}</td>
                </tr>
              ))}
              {ids.map((id) => (
                <tr key={id}>
                  <th scope="row">{id}</th>
                  <td class="num">{score(ra.metrics[id]?.score)}</td>
                  <td class="num">{score(rb.metrics[id]?.score)}</td>
                  <td class="num">{delta(ra.metrics[id]?.score, rb.metrics[id]?.score)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      ) : (
        <Empty>Loading…</Empty>
      )}
    </Panel>
  );
}
