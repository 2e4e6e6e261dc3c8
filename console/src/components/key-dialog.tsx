import { useState } from 'preact/hooks';
import { session } from '../session.ts';

/** Asks for one of API_KEYS; kept in this tab's session storage only. */
export function KeyDialog({ reason }: { reason: string }) {
  const [key, setKey] = useState('');
  return (
    <section class="panel key-dialog" aria-labelledby="key-title">
      <h1 id="key-title">API key needed</h1>
      <p>
        This Dockhand needs one of its API keys (API_KEYS). It is kept in this tab's session storage only, and
        sent as <code>Authorization: Bearer</code> with each call.
      </p>
      {reason ? (
        <p class="error" role="alert">
          {reason}
        </p>
      ) : null}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (key.trim()) session.useKey(key.trim());
        }}
      >
        <label for="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autocomplete="off"
          required
          value={key}
          onInput={(e) => setKey((e.currentTarget as HTMLInputElement).value)}
        />
        <button type="submit">Use this key</button>
      </form>
    </section>
  );
}
