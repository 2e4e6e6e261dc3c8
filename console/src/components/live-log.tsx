import { useEffect, useState } from 'preact/hooks';
import type { LogKind } from '../api.ts';
import { session, useApi } from '../session.ts';
import { ErrorNote, LogView } from './ui.tsx';

/** Output kept on screen; older text is dropped from the top. */
const MAX_CHARS = 200_000;

/**
 * A call's output as it is written (SSE through fetch, with the key in a header). Replays what
 * was logged so far, then follows until the call ends. `onEnd` hears the end status.
 */
export function LiveLog({
  kind,
  id,
  label,
  onEnd,
}: {
  kind: LogKind;
  id: string;
  label: string;
  onEnd?: (status: string | undefined) => void;
}) {
  const api = useApi();
  const [text, setText] = useState('');
  const [state, setState] = useState<'following' | 'ended' | 'failed'>('following');
  const [error, setError] = useState<unknown>(undefined);
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    const controller = new AbortController();
    let buffer = '';
    setText('');
    setState('following');
    setError(undefined);
    api
      .streamLogs(kind, id, {
        signal: controller.signal,
        onLog: (line) => {
          buffer += line.text;
          if (buffer.length > MAX_CHARS) buffer = buffer.slice(-MAX_CHARS);
          setText(buffer);
        },
      })
      .then((status) => {
        if (controller.signal.aborted) return;
        setState('ended');
        onEnd?.(status);
      })
      .catch((err) => {
        if (controller.signal.aborted) return;
        setError(err);
        setState('failed');
      });
    return () => controller.abort();
  }, [kind, id, attempt, session.keyVersion]);

  return (
    <div class="live-log">
      <p class="hint" aria-live="polite">
        {state === 'following' ? 'Following live output…' : state === 'ended' ? 'Output complete.' : ''}
      </p>
      <LogView text={text} label={label} />
      <ErrorNote error={error} what="Live output" />
      {state === 'failed' ? (
        <button type="button" onClick={() => setAttempt((n) => n + 1)}>
          Reconnect
        </button>
      ) : null}
    </div>
  );
}
