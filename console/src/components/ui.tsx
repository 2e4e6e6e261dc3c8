import type { ComponentChildren } from 'preact';
import { ApiError } from '../api.ts';

const TONE: Record<string, string> = {
  SUCCESS: 'ok',
  succeeded: 'ok',
  done: 'ok',
  online: 'ok',
  active: 'ok',
  RUNNING: 'busy',
  running: 'busy',
  processing: 'busy',
  draining: 'warn',
  cancelling: 'warn',
  PENDING: 'idle',
  pending: 'idle',
  queued: 'idle',
  drained: 'idle',
  ineligible: 'warn',
  offline: 'bad',
  FAILED: 'bad',
  failed: 'bad',
  TIMEOUT: 'bad',
  timeout: 'bad',
  cancelled: 'warn',
  CANCELLED: 'warn',
};

/** A status as a word with a colour; the word carries the meaning, the colour only helps. */
export function Status({ value }: { value: string }) {
  return <span class={`status status-${TONE[value] ?? 'idle'}`}>{value}</span>;
}

export function ErrorNote({ error, what }: { error: unknown; what?: string }) {
  if (!error) return null;
  const message = error instanceof Error ? error.message : String(error);
  const field = error instanceof ApiError && error.field ? ` (${error.field})` : '';
  return (
    <p class="error" role="alert">
      {what ? `${what}: ` : ''}
      {message}
      {field}
    </p>
  );
}

export function Panel({
  title,
  id,
  children,
  actions,
}: {
  title: string;
  id?: string;
  children: ComponentChildren;
  actions?: ComponentChildren;
}) {
  const headingId = id ? `${id}-title` : undefined;
  return (
    <section class="panel" aria-labelledby={headingId} id={id}>
      <div class="panel-head">
        <h2 id={headingId}>{title}</h2>
        {actions}
      </div>
      {children}
    </section>
  );
}

/** A wide table scrolls sideways on a narrow window instead of widening the page. */
export function TableWrap({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must be reachable by keyboard.
    <section class="table-wrap" aria-label={`${label}, table`} tabIndex={0}>
      {children}
    </section>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>;
}

/** A value and its label, for the small figures at the top of pages. */
export function Figure({ label, value, hint }: { label: string; value: ComponentChildren; hint?: string }) {
  return (
    <div class="figure">
      <div class="figure-value">{value}</div>
      <div class="figure-label">{label}</div>
      {hint ? <div class="figure-hint">{hint}</div> : null}
    </div>
  );
}

export function LogView({ text, label }: { text: string; label: string }) {
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: long output scrolls; the keyboard must reach it.
    <pre class="log" role="log" aria-label={label} tabIndex={0}>
      {text || '(no output)'}
    </pre>
  );
}
