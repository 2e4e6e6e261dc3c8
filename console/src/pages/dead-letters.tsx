import { useState } from 'preact/hooks';
import { ApiError } from '../api.ts';
import { Empty, ErrorNote, Panel, TableWrap } from '../components/ui.tsx';
import { ago } from '../format.ts';
import { usePoll } from '../poll.ts';
import { useApi } from '../session.ts';

export function DeadLettersPage() {
  const api = useApi();
  const list = usePoll((signal) => api.deadLetters(100, signal), 5000);
  const [note, setNote] = useState<string | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const redrive = async (id: string) => {
    setError(undefined);
    setNote(undefined);
    try {
      await api.redrive(id);
      setNote(`Sent ${id} again.`);
      list.refresh();
    } catch (err) {
      if (err instanceof ApiError && err.missingRoute)
        setNote('This server cannot redrive yet (POST /dead-letters/:id/redrive is missing).');
      else setError(err);
    }
  };
  return (
    <div class="page">
      <h1>Dead letters</h1>
      <p>Messages an ingress (SQS today) could not turn into work, newest first.</p>
      <ErrorNote error={list.error} />
      <ErrorNote error={error} what="Redrive failed" />
      {note ? (
        <p class="hint" role="status">
          {note}
        </p>
      ) : null}
      <Panel title="Entries" id="dead-letters">
        {list.data === undefined ? (
          <Empty>Loading…</Empty>
        ) : list.data.length === 0 ? (
          <Empty>None. Everything that arrived became work.</Empty>
        ) : (
          <TableWrap label="Dead letters">
            <table>
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Source</th>
                  <th scope="col">Reason</th>
                  <th scope="col">Body</th>
                  <th scope="col">
                    <span class="visually-hidden">Redrive</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.data.map((d) => (
                  <tr key={`${d.source}-${d.id}-${d.at}`}>
                    <td>{ago(d.at)}</td>
                    <td>{d.source}</td>
                    <td>{d.reason}</td>
                    <td>
                      <code class="clip">{d.body.slice(0, 200)}</code>
                    </td>
                    <td>
                      <button type="button" class="small" onClick={() => redrive(d.id)}>
                        Redrive<span class="visually-hidden"> {d.id}</span>
                      </button>
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
