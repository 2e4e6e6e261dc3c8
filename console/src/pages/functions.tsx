import { useState } from 'preact/hooks';
import type { DeployBody } from '../api.ts';
import { Empty, ErrorNote, Panel, TableWrap } from '../components/ui.tsx';
import { ago, mb, ms } from '../format.ts';
import { usePoll } from '../poll.ts';
import { href, navigate } from '../router.ts';
import { useApi } from '../session.ts';

const TEMPLATES: Record<string, { file: string; handler: string; code: string }> = {
  node20: {
    file: 'index.js',
    handler: 'index.handler',
    code: `exports.handler = async (event) => {
  console.log('got', JSON.stringify(event));
  return { hello: event.name ?? 'world' };
};
`,
  },
  python3: {
    file: 'app.py',
    handler: 'app.handler',
    code: `def handler(event, context):
    print("got", event)
    return {"hello": event.get("name", "world")}
`,
  },
};

export function FunctionsPage() {
  const api = useApi();
  const list = usePoll((signal) => api.functions(signal), 5000);
  return (
    <div class="page">
      <h1>Functions</h1>
      <Panel title="Deployed" id="deployed">
        <ErrorNote error={list.error} />
        {list.data === undefined ? (
          <Empty>Loading…</Empty>
        ) : list.data.length === 0 ? (
          <Empty>No functions yet: deploy one below.</Empty>
        ) : (
          <TableWrap label="Deployed functions">
            <table>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Runtime</th>
                  <th scope="col" class="num">
                    Memory
                  </th>
                  <th scope="col" class="num">
                    Timeout
                  </th>
                  <th scope="col">Deployed</th>
                </tr>
              </thead>
              <tbody>
                {list.data.map((f) => (
                  <tr key={f.name}>
                    <th scope="row">
                      <a href={href('functions', f.name)}>{f.name}</a>
                    </th>
                    <td>{f.runtime}</td>
                    <td class="num">{mb(f.memoryMb)}</td>
                    <td class="num">{ms(f.timeoutMs)}</td>
                    <td>{ago(f.lastModified)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </Panel>
      <DeployForm onDeployed={(name) => navigate(href('functions', name))} />
    </div>
  );
}

async function zipBase64(file: File): Promise<string> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000)
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function DeployForm({ onDeployed }: { onDeployed: (name: string) => void }) {
  const api = useApi();
  const [name, setName] = useState('');
  const [runtime, setRuntime] = useState('node20');
  const [handler, setHandler] = useState(TEMPLATES.node20?.handler ?? '');
  const [fileName, setFileName] = useState(TEMPLATES.node20?.file ?? '');
  const [code, setCode] = useState(TEMPLATES.node20?.code ?? '');
  const [memoryMb, setMemory] = useState(128);
  const [timeoutMs, setTimeoutMs] = useState(10_000);
  const [source, setSource] = useState<'paste' | 'zip'>('paste');
  const [zip, setZip] = useState<File | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);

  const chooseRuntime = (value: string) => {
    const t = TEMPLATES[value];
    setRuntime(value);
    if (t) {
      setHandler(t.handler);
      setFileName(t.file);
      setCode(t.code);
    }
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      if (source === 'zip' && !zip) throw new Error('Choose a zip file, or paste the code instead.');
      const body: DeployBody = {
        runtime,
        handler,
        memoryMb,
        timeoutMs,
        code: source === 'zip' && zip ? { zipBase64: await zipBase64(zip) } : { files: { [fileName]: code } },
      };
      await api.deploy(name, body);
      onDeployed(name);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Panel title="Deploy a function" id="deploy">
      <form class="form-grid" onSubmit={submit}>
        <label for="fn-name">Name</label>
        <input
          id="fn-name"
          required
          pattern="[A-Za-z0-9][A-Za-z0-9_\-]{0,63}"
          value={name}
          onInput={(e) => setName(e.currentTarget.value)}
          aria-describedby="fn-name-hint"
        />
        <span id="fn-name-hint" class="hint">
          Letters, digits, - and _, up to 64.
        </span>
        <label for="fn-runtime">Runtime</label>
        <select id="fn-runtime" value={runtime} onChange={(e) => chooseRuntime(e.currentTarget.value)}>
          <option value="node20">Node.js 20</option>
          <option value="python3">Python 3</option>
        </select>
        <label for="fn-handler">Handler</label>
        <input id="fn-handler" required value={handler} onInput={(e) => setHandler(e.currentTarget.value)} />
        <label for="fn-memory">Memory (MB)</label>
        <input
          id="fn-memory"
          type="number"
          min={64}
          max={10240}
          step={1}
          required
          value={memoryMb}
          onInput={(e) => setMemory(Number(e.currentTarget.value))}
        />
        <label for="fn-timeout">Timeout (ms)</label>
        <input
          id="fn-timeout"
          type="number"
          min={1}
          max={900000}
          required
          value={timeoutMs}
          onInput={(e) => setTimeoutMs(Number(e.currentTarget.value))}
        />
        <fieldset class="span-all">
          <legend>Code</legend>
          <label class="inline">
            <input
              type="radio"
              name="fn-source"
              value="paste"
              checked={source === 'paste'}
              onChange={() => setSource('paste')}
            />{' '}
            Paste code
          </label>
          <label class="inline">
            <input
              type="radio"
              name="fn-source"
              value="zip"
              checked={source === 'zip'}
              onChange={() => setSource('zip')}
            />{' '}
            Upload a zip
          </label>
          {source === 'paste' ? (
            <div class="stack">
              <label for="fn-file">File name</label>
              <input
                id="fn-file"
                required
                value={fileName}
                onInput={(e) => setFileName(e.currentTarget.value)}
              />
              <label for="fn-code">Source</label>
              <textarea
                id="fn-code"
                rows={10}
                spellcheck={false}
                class="code"
                value={code}
                onInput={(e) => setCode(e.currentTarget.value)}
              />
            </div>
          ) : (
            <div class="stack">
              <label for="fn-zip">Zip archive</label>
              <input
                id="fn-zip"
                type="file"
                accept=".zip,application/zip"
                onChange={(e) => setZip(e.currentTarget.files?.[0])}
              />
            </div>
          )}
        </fieldset>
        <div class="span-all actions">
          <button type="submit" disabled={busy}>
            {busy ? 'Deploying…' : 'Deploy'}
          </button>
        </div>
      </form>
      <ErrorNote error={error} what="Deploy failed" />
    </Panel>
  );
}
