import { setTimeout as delay } from 'node:timers/promises';

export interface WaitForOptions {
  /** What is awaited, for the failure message ("the pool to refill"). */
  what: string;
  /** Give up after this long. Default 10 000 ms. */
  timeoutMs?: number;
}

/**
 * For the few states no event announces: checks `check` at once, then again after 10 ms,
 * 20 ms, 40 ms… up to 500 ms between checks, until it returns a truthy value (returned) or
 * `timeoutMs` has passed (thrown, naming `what` and the last value or error). Bounded and
 * backed off, so a slow machine makes it slower, never wrong, and a broken one fails clearly.
 */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  { what, timeoutMs = 10_000 }: WaitForOptions,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let pause = 10;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
      last = value;
    } catch (err) {
      last = err;
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what} (last: ${detail})`);
    }
    await delay(Math.min(pause, left));
    pause = Math.min(pause * 2, 500);
  }
}
