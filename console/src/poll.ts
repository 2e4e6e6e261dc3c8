import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { session } from './session.ts';

/** Nothing polls faster than this. */
export const MIN_INTERVAL_MS = 1000;
/** After failures, the wait doubles up to this. */
export const MAX_BACKOFF_MS = 30_000;

/** The wait before the next poll: the interval, doubled per failure in a row, capped. */
export function nextDelay(intervalMs: number, failures: number): number {
  const base = Math.max(MIN_INTERVAL_MS, intervalMs);
  return Math.min(MAX_BACKOFF_MS, base * 2 ** Math.min(failures, 10));
}

export interface Polled<T> {
  data: T | undefined;
  error: Error | undefined;
  refresh: () => void;
}

/**
 * Loads now, then again every `intervalMs` (never under a second), waiting longer after each
 * failure and skipping while the tab is hidden. `intervalMs` 0 loads once (and on refresh).
 */
export function usePoll<T>(
  load: (signal: AbortSignal) => Promise<T>,
  intervalMs: number,
  deps: unknown[] = [],
  /** Stop polling once the answer says so (a call that finished). */
  stopWhen?: (value: T) => boolean,
): Polled<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<Error | undefined>(undefined);
  const [tick, setTick] = useState(0);
  const [keyVersion, setKeyVersion] = useState(session.keyVersion);
  const loadRef = useRef(load);
  loadRef.current = load;
  const stopRef = useRef(stopWhen);
  stopRef.current = stopWhen;

  useEffect(() => session.subscribe(() => setKeyVersion(session.keyVersion)), []);
  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let failures = 0;
    const run = async () => {
      if (controller.signal.aborted) return;
      if (typeof document !== 'undefined' && document.hidden && intervalMs > 0) {
        timer = setTimeout(run, nextDelay(intervalMs, 0));
        return;
      }
      try {
        const value = await loadRef.current(controller.signal);
        if (controller.signal.aborted) return;
        setData(value);
        setError(undefined);
        failures = 0;
        if (stopRef.current?.(value)) return;
      } catch (err) {
        if (controller.signal.aborted) return;
        setError(err as Error);
        failures += 1;
      }
      // A refused key stops every poll until a new one is typed: guesses are counted per address.
      if (intervalMs > 0 && !session.askForKey) timer = setTimeout(run, nextDelay(intervalMs, failures));
    };
    if (session.askForKey) return () => controller.abort();
    run();
    return () => {
      controller.abort();
      if (timer) clearTimeout(timer);
    };
  }, [...deps, tick, keyVersion, intervalMs]);

  const refresh = useCallback(() => setTick((n) => n + 1), []);
  return { data, error, refresh };
}
