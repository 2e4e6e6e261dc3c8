import { useState } from 'preact/hooks';
import { ApiError, type InvocationResult, type InvocationState } from '../api.ts';
import { LiveLog } from '../components/live-log.tsx';
import { Empty, ErrorNote, Figure, LogView, Panel, Status, TableWrap } from '../components/ui.tsx';
import { ago, json, mb, ms, percent } from '../format.ts';
import { usePoll } from '../poll.ts';
import { href } from '../router.ts';
import { useApi } from '../session.ts';
import { TuningPanel } from './tuning.tsx';

export function parseJson(text: string, what: string): unknown {
  if (!text.trim()) return {};
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

export function FunctionPage({ name }: { name: string }) {
  const api = useApi();
  const fn = usePoll(() => api.getFunction(name), 10_000, [name]);
  const [event, setEvent] = useState('{\n  "name": "Dockhand"\n}');
  const [selected, setSelected] = useState<string | undefined>(undefined);

  return (
    <div class="page">
      <p class="crumbs">
        <a href={href('functions')}>Functions</a> /
      </p>
      <h1>{name}</h1>
      <ErrorNote error={fn.error} />
      {fn.data ? (
        <div class="figures">
          <Figure label="runtime" value={fn.data.runtime} />
          <Figure label="memory" value={mb(fn.data.memoryMb)} />
          <Figure label="timeout" value={ms(fn.data.timeoutMs)} />
          <Figure label="handler" value={fn.data.handler} />
          <Figure label="deployed" value={ago(fn.data.lastModified)} hint={`version ${fn.data.version}`} />
        </div>
      ) : null}
      <InvokePanel name={name} event={event} setEvent={setEvent} onInvoked={setSelected} />
      <RecentInvocations name={name} selected={selected} onSelect={setSelected} />
      <TuningPanel name={name} event={event} memoryMb={fn.data?.memoryMb} onChanged={fn.refresh} />
    </div>
  );
}

function InvokePanel({
  name,
  event,
  setEvent,
  onInvoked,
}: {
  name: string;
  event: string;
  setEvent: (v: string) => void;
  onInvoked: (requestId: string) => void;
}) {
  const api = useApi();
  const [mode, setMode] = useState<'sync' | 'async'>('sync');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const [result, setResult] = useState<InvocationResult | undefined>(undefined);

  const invoke = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    setResult(undefined);
    try {
      const answer = await api.invoke(name, parseJson(event, 'The event'), mode);
      if ('result' in answer) {
        setResult(answer.result);
        onInvoked(answer.result.requestId);
      } else onInvoked(answer.requestId);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Panel title="Invoke" id="invoke">
      <form onSubmit={invoke} class="stack">
        <label for="invoke-event">Event (JSON)</label>
        <textarea
          id="invoke-event"
          class="code"
          rows={6}
          spellcheck={false}
          value={event}
          onInput={(e) => setEvent(e.currentTarget.value)}
        />
        <fieldset>
          <legend>How</legend>
          <label class="inline">
            <input
              type="radio"
              name="invoke-mode"
              checked={mode === 'sync'}
              onChange={() => setMode('sync')}
            />{' '}
            Wait for the result
          </label>
          <label class="inline">
            <input
              type="radio"
              name="invoke-mode"
              checked={mode === 'async'}
              onChange={() => setMode('async')}
            />{' '}
            Queue it and follow it live
          </label>
        </fieldset>
        <div class="actions">
          <button type="submit" disabled={busy}>
            {busy ? 'Invoking…' : 'Invoke'}
          </button>
        </div>
      </form>
      <ErrorNote error={error} what="Invoke failed" />
      {result ? <ResultView result={result} /> : null}
    </Panel>
  );
}

export function ResultView({ result }: { result: InvocationResult }) {
  return (
    <div class="result" data-testid="invocation-result">
      <h3>
        Result <Status value={result.status} />
      </h3>
      <div class="figures">
        <Figure label="duration" value={ms(result.durationMs)} />
        <Figure label="start" value={result.coldStart ? 'cold' : 'warm'} />
        <Figure label="peak memory" value={mb(result.resources.memoryUsedMb)} />
        <Figure label="CPU" value={percent(result.resources.cpuUsagePercent)} />
      </div>
      {result.error ? (
        <p class="error">
          {result.error.errorType}: {result.error.errorMessage}
        </p>
      ) : null}
      <h4>Returned</h4>
      <pre class="json">{json(result.result) || 'null'}</pre>
      <h4>Logs{result.logsTruncated ? ' (truncated)' : ''}</h4>
      <LogView text={result.logs ?? ''} label="Invocation logs" />
      <p class="hint">
        Auto-tuner: {result.autoTuner.tip} (recommends {result.autoTuner.recommendation})
      </p>
    </div>
  );
}

function RecentInvocations({
  name,
  selected,
  onSelect,
}: {
  name: string;
  selected: string | undefined;
  onSelect: (id: string) => void;
}) {
  const api = useApi();
  const list = usePoll((signal) => api.invocations({ function: name, limit: 20 }, signal), 2000, [name]);
  return (
    <Panel title="Recent invocations" id="invocations">
      <ErrorNote error={list.error} />
      {list.data === undefined ? (
        <Empty>Loading…</Empty>
      ) : list.data.length === 0 ? (
        <Empty>None yet.</Empty>
      ) : (
        <TableWrap label="Recent invocations">
          <table>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Status</th>
                <th scope="col" class="num">
                  Duration
                </th>
                <th scope="col">Start</th>
                <th scope="col">Source</th>
                <th scope="col">
                  <span class="visually-hidden">Details</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.data.map((i) => (
                <tr key={i.requestId} class={i.requestId === selected ? 'selected' : ''}>
                  <td>{ago(i.createdAt)}</td>
                  <td>
                    <Status value={i.status} />
                  </td>
                  <td class="num">{ms(i.durationMs)}</td>
                  <td>{i.coldStart === undefined ? '—' : i.coldStart ? 'cold' : 'warm'}</td>
                  <td>{i.source ?? '—'}</td>
                  <td>
                    <button type="button" class="small" onClick={() => onSelect(i.requestId)}>
                      Details<span class="visually-hidden"> of {i.requestId}</span>
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
      {selected ? <InvocationDetail requestId={selected} /> : null}
    </Panel>
  );
}

function InvocationDetail({ requestId }: { requestId: string }) {
  const api = useApi();
  const [cancelNote, setCancelNote] = useState<string | undefined>(undefined);
  const [cancelError, setCancelError] = useState<unknown>(undefined);
  const state = usePoll<InvocationState>(
    () => api.invocation(requestId),
    1000,
    [requestId],
    (s) => s.done,
  );
  const running = state.data && !state.data.done;

  const cancel = async () => {
    setCancelError(undefined);
    try {
      await api.cancelInvocation(requestId);
      setCancelNote('Cancel asked.');
      state.refresh();
    } catch (err) {
      if (err instanceof ApiError && err.missingRoute)
        setCancelNote('This server cannot cancel invocations yet (DELETE /invocations/:id is missing).');
      else setCancelError(err);
    }
  };

  return (
    <div class="detail" aria-live="polite">
      <h3>
        Invocation <code>{requestId}</code>
      </h3>
      <ErrorNote error={state.error} />
      {state.data?.done ? <ResultView result={state.data.result} /> : null}
      {running && state.data && !state.data.done ? (
        <>
          <p>
            <Status value={state.data.status} />{' '}
            <button type="button" class="danger" onClick={cancel}>
              Cancel invocation
            </button>
          </p>
          <LiveLog
            kind="invocations"
            id={requestId}
            label="Live invocation output"
            onEnd={() => state.refresh()}
          />
        </>
      ) : null}
      {cancelNote ? <p class="hint">{cancelNote}</p> : null}
      <ErrorNote error={cancelError} what="Cancel failed" />
    </div>
  );
}
