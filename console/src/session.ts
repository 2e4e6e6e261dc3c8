import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import { type Api, createApi } from './api.ts';

/*
 * The key lives in sessionStorage only: gone when the tab closes, never in a URL, a cookie or
 * localStorage. The page's state around it (whether to ask for one) is a tiny store here.
 */
const STORAGE_KEY = 'dockhand.apiKey';

export function readKey(): string | undefined {
  try {
    return sessionStorage.getItem(STORAGE_KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

export function writeKey(key: string | undefined): void {
  try {
    if (key) sessionStorage.setItem(STORAGE_KEY, key);
    else sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // Storage refused (private mode): the key lasts until the page is left.
  }
  memoryKey = key;
}

let memoryKey = readKey();

type Listener = () => void;
const listeners = new Set<Listener>();
interface Session {
  /** Bumped when the key changes: polls restart with it. */
  keyVersion: number;
  /** Show the key prompt instead of the page. */
  askForKey: boolean;
  /** Why (the 401's sentence), if a key was refused. */
  reason: string;
  set(partial: Partial<Pick<Session, 'askForKey' | 'reason'>>): void;
  useKey(key: string | undefined): void;
  subscribe(listener: Listener): () => void;
}

export const session: Session = {
  keyVersion: 0,
  askForKey: false,
  reason: '',
  set(partial) {
    Object.assign(session, partial);
    for (const l of listeners) l();
  },
  useKey(key) {
    writeKey(key);
    session.keyVersion += 1;
    session.set({ askForKey: !key, reason: '' });
  },
  subscribe(listener) {
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
    };
  },
};

export const api: Api = createApi({
  getKey: () => memoryKey,
  onUnauthorized: (error) => session.set({ askForKey: true, reason: error.message }),
});

export const ApiContext = createContext<Api>(api);
export const useApi = () => useContext(ApiContext);
