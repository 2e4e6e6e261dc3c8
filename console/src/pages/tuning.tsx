import { useEffect, useMemo, useState } from 'preact/hooks';
import type { AlignedData, Options } from 'uplot';
import type { SweepResult, SweepStatus } from '../api.ts';
import { UChart } from '../components/charts.tsx';
import { Empty, ErrorNote, Figure, Panel, TableWrap } from '../components/ui.tsx';
import { costPerMillion, mb, ms } from '../format.ts';
import { usePoll } from '../poll.ts';
import { useApi } from '../session.ts';
import { parseJson } from './function.tsx';

const sweepKey = (name: string) => `dockhand.sweep.${name}`;

/** Memory sizes as typed ("128, 256 512"): integers, in order, without repeats. */
export function parseSizes(text: string): number[] {
  const sizes = text
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((s) => Number(s));
  if (sizes.some((n) => !Number.isInteger(n) || n < 64 || n > 10240))
    throw new Error('Memory sizes must be whole numbers of MB between 64 and 10240.');
  return [...new Set(sizes)].sort((a, b) => a - b);
}

export function TuningPanel({
  name,
  event,
  memoryMb,
  onChanged,
}: {
  name: string;
  event: string;
  memoryMb: number | undefined;
  onChanged: () => void;
}) {
  const api = useApi();
  const tuning = usePoll(() => api.tuning(name), 10_000, [name]);
  const [sizes, setSizes] = useState('128, 256, 512, 1024');
  const [runs, setRuns] = useState(3);
  const [strategy, setStrategy] = useState<'cost' | 'speed' | 'balanced'>('balanced');
  const [sweepId, setSweepId] = useState<string | undefined>(
    () => sessionStorage.getItem(sweepKey(name)) ?? undefined,
  );
  const [error, setError] = useState<unknown>(undefined);
  const [applied, setApplied] = useState<string | undefined>(undefined);

  useEffect(() => {
    setSweepId(sessionStorage.getItem(sweepKey(name)) ?? undefined);
  }, [name]);

  const start = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    try {
      const status = await api.startSweep(name, {
        memorySizes: parseSizes(sizes),
        invocations: runs,
        strategy,
        event: parseJson(event, 'The event'),
      });
      sessionStorage.setItem(sweepKey(name), status.sweepId);
      setSweepId(status.sweepId);
    } catch (err) {
      setError(err);
    }
  };

  const apply = async (target: number) => {
    setError(undefined);
    try {
      await api.configure(name, { memoryMb: target });
      setApplied(`Memory set to ${mb(target)}; the next invocations run with it.`);
      onChanged();
      tuning.refresh();
    } catch (err) {
      setError(err);
    }
  };

  const advice = tuning.data?.advice;
  return (
    <Panel title="Tuning" id="tuning">
      <ErrorNote error={tuning.error} />
      <h3>Auto-tuner (recent invocations)</h3>
      {tuning.data ? (
        <>
          <div class="figures">
            <Figure label="samples" value={`${tuning.data.successful} of ${tuning.data.samples}`} />
            <Figure label="p95 peak memory" value={mb(tuning.data.p95PeakMb)} />
            <Figure label="p50 duration" value={ms(tuning.data.p50DurationMs)} />
            <Figure label="p95 duration" value={ms(tuning.data.p95DurationMs)} />
          </div>
          {advice ? (
            <p class="advice">
              {advice.tip} <strong>Recommends {advice.recommendation}</strong>
              {advice.recommendationMb !== memoryMb ? (
                <>
                  {' '}
                  <button type="button" class="small" onClick={() => apply(advice.recommendationMb)}>
                    Apply {mb(advice.recommendationMb)}
                  </button>
                </>
              ) : null}
            </p>
          ) : (
            <Empty>No successful invocations yet: the auto-tuner has nothing to go on.</Empty>
          )}
        </>
      ) : null}

      <h3>Power-tuning sweep</h3>
      <form class="form-grid" onSubmit={start}>
        <label for="sweep-sizes">Memory sizes (MB)</label>
        <input id="sweep-sizes" value={sizes} onInput={(e) => setSizes(e.currentTarget.value)} />
        <label for="sweep-runs">Runs per size</label>
        <input
          id="sweep-runs"
          type="number"
          min={1}
          max={50}
          value={runs}
          onInput={(e) => setRuns(Number(e.currentTarget.value))}
        />
        <label for="sweep-strategy">Pick by</label>
        <select
          id="sweep-strategy"
          value={strategy}
          onChange={(e) => setStrategy(e.currentTarget.value as typeof strategy)}
        >
          <option value="balanced">balance of cost and speed</option>
          <option value="cost">lowest cost</option>
          <option value="speed">fastest</option>
        </select>
        <div class="span-all actions">
          <button type="submit">Run sweep</button>
          <span class="hint">Uses the event from the Invoke panel; one discarded warm-up call per size.</span>
        </div>
      </form>
      <ErrorNote error={error} />
      {applied ? (
        <p class="hint" role="status">
          {applied}
        </p>
      ) : null}
      {sweepId ? <SweepView name={name} sweepId={sweepId} memoryMb={memoryMb} onApply={apply} /> : null}
    </Panel>
  );
}

function SweepView({
  name,
  sweepId,
  memoryMb,
  onApply,
}: {
  name: string;
  sweepId: string;
  memoryMb: number | undefined;
  onApply: (mb: number) => void;
}) {
  const api = useApi();
  const sweep = usePoll<SweepStatus>(
    () => api.sweep(name, sweepId),
    1000,
    [name, sweepId],
    (s) => s.status === 'done' || s.status === 'failed',
  );
  const s = sweep.data;
  return (
    <div class="detail">
      <ErrorNote error={sweep.error} what="Sweep" />
      {s && (s.status === 'queued' || s.status === 'running') ? (
        <p>
          <label for="sweep-progress">Sweep {s.status}: </label>
          <progress id="sweep-progress" max={100} value={s.progress}>
            {s.progress}%
          </progress>{' '}
          {s.progress}%
        </p>
      ) : null}
      {s?.status === 'failed' ? <p class="error">The sweep failed: {s.error}</p> : null}
      {s?.result ? <SweepChart result={s.result} memoryMb={memoryMb} onApply={onApply} /> : null}
    </div>
  );
}

function SweepChart({
  result,
  memoryMb,
  onApply,
}: {
  result: SweepResult;
  memoryMb: number | undefined;
  onApply: (mb: number) => void;
}) {
  const points = result.points;
  const best = result.best;
  const data = useMemo<AlignedData>(
    () => [
      points.map((p) => p.memoryMb),
      points.map((p) => p.durationMs),
      points.map((p) => p.costPerMillionUsd),
      points.map((p) => (best && p.memoryMb === best.memoryMb ? p.durationMs : null)),
    ],
    [result],
  );
  const summary = `Sweep by ${result.strategy}: ${points
    .map((p) => `${p.memoryMb} MB takes ${ms(p.durationMs)} at ${costPerMillion(p.costPerMillionUsd)}`)
    .join('; ')}. ${best ? `Picked ${best.memoryMb} MB.` : 'No size picked.'}`;

  return (
    <div class="sweep" data-testid="sweep-result">
      <h4>Memory vs duration vs cost</h4>
      <UChart data={data} summary={summary} build={sweepChartOptions} height={300} />
      <p class="hint chart-key">
        Across: memory (MB). Solid blue, left axis: duration (ms). Dashed orange, right axis: cost per 1M
        invocations (USD). Green ring: the pick.
      </p>
      <p class="pick">
        {best ? (
          <>
            <strong>
              Pick: {mb(best.memoryMb)} — {ms(best.durationMs)}, {costPerMillion(best.costPerMillionUsd)}
            </strong>
            . {result.reason}{' '}
            {best.memoryMb !== memoryMb ? (
              <button type="button" onClick={() => onApply(best.memoryMb)}>
                Use {mb(best.memoryMb)}
              </button>
            ) : (
              <span class="hint">(the function already runs at this size)</span>
            )}
          </>
        ) : (
          result.reason
        )}
      </p>
      <TableWrap label="Sweep points">
        <table>
          <caption class="visually-hidden">Each memory size measured by the sweep</caption>
          <thead>
            <tr>
              <th scope="col" class="num">
                Memory
              </th>
              <th scope="col" class="num">
                Duration (trimmed mean)
              </th>
              <th scope="col" class="num">
                p90
              </th>
              <th scope="col" class="num">
                Cost / 1M invocations
              </th>
              <th scope="col" class="num">
                Runs (failed)
              </th>
              <th scope="col">
                <span class="visually-hidden">Apply</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {points.map((p) => (
              <tr key={p.memoryMb} class={best?.memoryMb === p.memoryMb ? 'selected' : ''}>
                <th scope="row" class="num">
                  {mb(p.memoryMb)}
                  {best?.memoryMb === p.memoryMb ? ' (pick)' : ''}
                </th>
                <td class="num">{ms(p.durationMs)}</td>
                <td class="num">{ms(p.p90Ms)}</td>
                <td class="num">{costPerMillion(p.costPerMillionUsd)}</td>
                <td class="num">
                  {p.runs} ({p.failures})
                </td>
                <td>
                  {p.memoryMb !== memoryMb ? (
                    <button type="button" class="small" onClick={() => onApply(p.memoryMb)}>
                      Use {mb(p.memoryMb)}
                    </button>
                  ) : (
                    <span class="hint">current</span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
    </div>
  );
}

function sweepChartOptions(width: number, height: number): Options {
  return {
    width,
    height,
    scales: {
      x: { time: false, distr: 3, log: 2 },
      ms: { range: (_u, _min, max) => [0, max * 1.15 || 1] },
      cost: { range: (_u, _min, max) => [0, max * 1.15 || 1] },
    },
    axes: [
      {
        label: 'memory (MB)',
        stroke: '#333',
        values: (_u, splits) => splits.map((v) => `${Math.round(v)}`),
      },
      {
        scale: 'ms',
        label: 'duration (ms)',
        stroke: '#1f5fa8',
        size: 60,
        // Fast functions take a few ms: whole numbers would label two ticks alike.
        values: (_u, splits) => splits.map((v) => (v < 10 ? v.toFixed(1) : `${Math.round(v)}`)),
      },
      {
        scale: 'cost',
        side: 1,
        label: 'cost per 1M invocations (USD)',
        stroke: '#a8491f',
        size: 70,
        grid: { show: false },
        values: (_u, splits) => splits.map((v) => `$${v < 1 ? v.toFixed(3) : v.toFixed(2)}`),
      },
    ],
    series: [
      { label: 'memory', value: (_u, v) => (v === null ? '—' : `${v} MB`) },
      {
        label: 'duration',
        scale: 'ms',
        stroke: '#1f5fa8',
        width: 2,
        points: { show: true, size: 7 },
        value: (_u, v) => ms(v ?? undefined),
      },
      {
        label: 'cost / 1M',
        scale: 'cost',
        stroke: '#a8491f',
        width: 2,
        dash: [6, 4],
        points: { show: true, size: 7 },
        value: (_u, v) => (v === null ? '—' : costPerMillion(v)),
      },
      {
        label: 'pick',
        scale: 'ms',
        stroke: '#137333',
        width: 0,
        points: { show: true, size: 16, width: 3, fill: 'rgba(19,115,51,0.25)' },
        value: (_u, v) => (v === null ? '—' : 'picked'),
      },
    ],
  };
}
