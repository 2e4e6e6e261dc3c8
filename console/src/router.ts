import { useEffect, useState } from 'preact/hooks';

/**
 * Hash routes (#/functions/name): one page, served from one file, and nothing in the path
 * that the server must know. Never holds the key.
 */
export interface Route {
  parts: string[];
  params: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#\/?/, '');
  const [path = '', search = ''] = raw.split('?', 2);
  return {
    parts: path
      .split('/')
      .filter(Boolean)
      .map((p) => decodeURIComponent(p)),
    params: new URLSearchParams(search),
  };
}

export function href(...parts: string[]): string {
  return `#/${parts.map(encodeURIComponent).join('/')}`;
}

export function navigate(to: string): void {
  window.location.hash = to;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(window.location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseHash(window.location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
