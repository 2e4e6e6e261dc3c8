import { useEffect, useRef, useState } from 'preact/hooks';
import { KeyDialog } from './components/key-dialog.tsx';
import { BatchesPage } from './pages/batches.tsx';
import { DeadLettersPage } from './pages/dead-letters.tsx';
import { ExecPage } from './pages/exec.tsx';
import { FunctionPage } from './pages/function.tsx';
import { FunctionsPage } from './pages/functions.tsx';
import { NodesPage } from './pages/nodes.tsx';
import { OverviewPage } from './pages/overview.tsx';
import { href, type Route, useRoute } from './router.ts';
import { api, readKey, session } from './session.ts';

const NAV = [
  { to: '', label: 'Overview' },
  { to: 'functions', label: 'Functions' },
  { to: 'exec', label: 'Exec runs' },
  { to: 'batches', label: 'Batches' },
  { to: 'nodes', label: 'Nodes' },
  { to: 'dead-letters', label: 'Dead letters' },
];

function page(route: Route) {
  const [section = '', id] = route.parts;
  switch (section) {
    case '':
      return <OverviewPage />;
    case 'functions':
      return id ? <FunctionPage name={id} /> : <FunctionsPage />;
    case 'exec':
      return <ExecPage selected={id} />;
    case 'batches':
      return <BatchesPage selected={id} params={route.params} />;
    case 'nodes':
      return <NodesPage />;
    case 'dead-letters':
      return <DeadLettersPage />;
    default:
      return (
        <p class="empty">
          No page here. <a href="#/">Back to the overview</a>.
        </p>
      );
  }
}

function useSession() {
  const [, setN] = useState(0);
  useEffect(() => session.subscribe(() => setN((n) => n + 1)), []);
  return session;
}

export function App() {
  const route = useRoute();
  const s = useSession();
  const main = useRef<HTMLElement>(null);
  const [ready, setReady] = useState(false);

  // Asks for the key before the first call when the server needs one, so no call is refused.
  useEffect(() => {
    api
      .settings()
      .then((settings) => {
        if (settings.keyRequired && !readKey()) session.set({ askForKey: true });
      })
      .catch(() => {})
      .finally(() => setReady(true));
  }, []);

  const section = route.parts[0] ?? '';
  useEffect(() => {
    const label = NAV.find((n) => n.to === section)?.label ?? 'Dockhand';
    document.title = `${label} · Dockhand console`;
  }, [section]);

  return (
    <>
      <button type="button" class="skip-link" onClick={() => main.current?.focus()}>
        Skip to content
      </button>
      <header class="top">
        <a class="brand" href="#/">
          Dockhand
        </a>
        <nav aria-label="Console sections">
          <ul>
            {NAV.map((n) => (
              <li key={n.to}>
                <a href={n.to ? href(n.to) : '#/'} aria-current={section === n.to ? 'page' : undefined}>
                  {n.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="top-tools">
          {readKey() ? (
            <button type="button" class="link-button" onClick={() => session.useKey(undefined)}>
              Forget key
            </button>
          ) : null}
        </div>
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        {s.askForKey ? <KeyDialog reason={s.reason} /> : ready ? page(route) : null}
      </main>
    </>
  );
}
