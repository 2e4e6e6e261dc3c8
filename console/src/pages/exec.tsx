import { useEffect, useState } from 'preact/hooks';
import type { ExecOutputFile, ExecResponse, ExecState } from '../api.ts';
import { LiveLog } from '../components/live-log.tsx';
import { Empty, ErrorNote, Figure, LogView, Panel, Status, TableWrap } from '../components/ui.tsx';
import { ago, bytes, json, mb, percent } from '../format.ts';
import { usePoll } from '../poll.ts';
import { href, navigate } from '../router.ts';
import { useApi } from '../session.ts';
import { parseJson } from './function.tsx';

const EXAMPLE = {
  container: {
    image: 'alpine:latest',
    command: ['sh', '-c', 'cat /workspace/input/hello.txt > /workspace/output/result.txt; echo done'],
  },
  input: { files: [{ name: 'hello.txt', content: 'hello from the console\n' }] },
  output: { expected_files: ['result.txt'], return_logs: true },
  timeout: 60,
};

export function ExecPage({ selected }: { selected: string | undefined }) {
  const api = useApi();
  const list = usePoll((signal) => api.executions(30, signal), 2000);
  return (
    <div class="page">
      <h1>Exec runs</h1>
      <SubmitForm onSubmitted={(id) => navigate(href('exec', id))} />
      {selected ? <ExecDetail id={selected} /> : null}
      <Panel title="Recent executions" id="executions">
        <ErrorNote error={list.error} />
        {list.data === undefined ? (
          <Empty>Loading…</Empty>
        ) : list.data.length === 0 ? (
          <Empty>No executions kept.</Empty>
        ) : (
          <TableWrap label="Recent executions">
            <table>
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Status</th>
                  <th scope="col">Image</th>
                  <th scope="col" class="num">
                    Duration
                  </th>
                  <th scope="col" class="num">
                    Exit
                  </th>
                  <th scope="col" class="num">
                    Files
                  </th>
                  <th scope="col">Id</th>
                </tr>
              </thead>
              <tbody>
                {list.data.map((e) => (
                  <tr key={e.execution_id} class={e.execution_id === selected ? 'selected' : ''}>
                    <td>{ago(e.createdAt)}</td>
                    <td>
                      <Status value={e.status} />
                    </td>
                    <td>{e.image ?? '—'}</td>
                    <td class="num">{e.duration ?? '—'}</td>
                    <td class="num">{e.exit_code ?? '—'}</td>
                    <td class="num">{e.output_files ?? '—'}</td>
                    <td>
                      <a href={href('exec', e.execution_id)}>
                        <code>{e.execution_id.slice(0, 8)}</code>
                        <span class="visually-hidden"> details</span>
                      </a>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </Panel>
    </div>
  );
}

function SubmitForm({ onSubmitted }: { onSubmitted: (id: string) => void }) {
  const api = useApi();
  const [text, setText] = useState(json(EXAMPLE));
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const pending = await api.submitExec(parseJson(text, 'The request'));
      onSubmitted(pending.execution_id);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Panel title="Submit a request" id="submit">
      <form class="stack" onSubmit={submit}>
        <label for="exec-request">Exec request (JSON, as POST /exec takes it)</label>
        <textarea
          id="exec-request"
          class="code"
          rows={14}
          spellcheck={false}
          value={text}
          onInput={(e) => setText(e.currentTarget.value)}
        />
        <div class="actions">
          <button type="submit" disabled={busy}>
            {busy ? 'Submitting…' : 'Submit'}
          </button>
        </div>
      </form>
      <ErrorNote error={error} what="Submit failed" />
    </Panel>
  );
}

/** A file from the response as a download: made in the page, so the key never goes in a link. */
function FileLink({ file }: { file: ExecOutputFile }) {
  const [url, setUrl] = useState<string | undefined>(undefined);
  useEffect(() => {
    const data =
      file.encoding === 'base64'
        ? Uint8Array.from(atob(file.content), (c) => c.charCodeAt(0))
        : new TextEncoder().encode(file.content);
    const made = URL.createObjectURL(new Blob([data], { type: 'application/octet-stream' }));
    setUrl(made);
    return () => URL.revokeObjectURL(made);
  }, [file]);
  return (
    <a href={url} download={file.name.split('/').pop() || 'output'}>
      Download {file.name}
    </a>
  );
}

function ExecDetail({ id }: { id: string }) {
  const api = useApi();
  const state = usePoll<ExecState>(
    () => api.execution(id),
    1000,
    [id],
    (s) => s.done,
  );
  const [cancelError, setCancelError] = useState<unknown>(undefined);
  const cancel = async () => {
    setCancelError(undefined);
    try {
      await api.cancelExec(id);
      state.refresh();
    } catch (err) {
      setCancelError(err);
    }
  };
  const s = state.data;
  return (
    <Panel title={`Execution ${id.slice(0, 8)}`} id="execution">
      <ErrorNote error={state.error} />
      {s && !s.done ? (
        <>
          <p>
            <Status value={s.pending.status} />{' '}
            <button type="button" class="danger" onClick={cancel}>
              Cancel execution
            </button>
          </p>
          <ErrorNote error={cancelError} what="Cancel failed" />
          <LiveLog kind="exec" id={id} label="Live execution output" onEnd={() => state.refresh()} />
        </>
      ) : null}
      {s?.done ? <ExecResult response={s.response} /> : null}
    </Panel>
  );
}

function ExecResult({ response }: { response: ExecResponse }) {
  const r = response.result;
  const meta: Record<string, unknown> = r?.metadata ?? {};
  return (
    <div class="result" data-testid="exec-result">
      <h3>
        <Status value={response.status ?? (response.success ? 'succeeded' : 'failed')} />
      </h3>
      <div class="figures">
        <Figure label="duration" value={response.duration} />
        <Figure label="exit code" value={r?.exit_code ?? '—'} />
        <Figure label="peak memory" value={mb(meta.peak_memory_mb as number | undefined)} />
        <Figure label="CPU" value={percent(meta.cpu_percent as number | undefined)} />
        <Figure label="container" value={meta.warm ? 'warm' : 'cold'} />
      </div>
      {response.error ? <p class="error">{response.error}</p> : null}
      <h4>Output files</h4>
      {r && r.output_files.length > 0 ? (
        <ul class="plain-list">
          {r.output_files.map((f) => (
            <li key={f.path}>
              <FileLink file={f} /> <span class="hint">({bytes(f.size)})</span>
            </li>
          ))}
        </ul>
      ) : (
        <Empty>None.</Empty>
      )}
      {Array.isArray(meta.missing_files) && meta.missing_files.length > 0 ? (
        <p class="warn-text">Expected but missing: {(meta.missing_files as string[]).join(', ')}</p>
      ) : null}
      {r && r.graph_update !== null && r.graph_update !== undefined ? (
        <>
          <h4>Graph update</h4>
          <pre class="json">{json(r.graph_update)}</pre>
        </>
      ) : null}
      <h4>Output{meta.logs_truncated ? ' (truncated)' : ''}</h4>
      <LogView text={r?.output ?? ''} label="Execution output" />
    </div>
  );
}
