import type { Redis } from 'ioredis';
import { Counter, type Registry } from 'prom-client';

/**
 * Live logs travel worker → Redis → gateway: the process running a call appends its output to
 * a Redis stream `<prefix>:logs:<kind>:<id>` as it is written, and whichever gateway serves
 * `GET …/logs?follow=1` reads it back (queues/log-reader.ts). One stream per invocation,
 * execution or node; an `end` entry closes a call's stream.
 */
export const LOG_KINDS = ['invocation', 'exec', 'node'] as const;
export type LogKind = (typeof LOG_KINDS)[number];
export type LogStreamName = 'stdout' | 'stderr';

/** What a node's log may be kept under: the UUIDs registration gives, or any id as tame. */
const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$/;

export const logStreamKey = (prefix: string, kind: LogKind, id: string) => `${prefix}:logs:${kind}:${id}`;

/**
 * Entries kept per stream (XADD MAXLEN ~) and characters per entry. A call's stream is also
 * bounded by the writer's per-call budget; a node's, which never ends, only by these: a node
 * keeps its last 2,000 entries (pino lines, joined when they come fast), at most 16 MiB.
 */
export const STREAM_LIMITS: Record<LogKind, { maxEntries: number; entryChars: number }> = {
  invocation: { maxEntries: 10_000, entryChars: 16 * 1024 },
  exec: { maxEntries: 10_000, entryChars: 16 * 1024 },
  node: { maxEntries: 2_000, entryChars: 8 * 1024 },
};

/** Longest `end` status kept (a function's SUCCESS…, an execution's succeeded…). */
export const MAX_STATUS_CHARS = 64;

export interface LogWriterOptions {
  /** A fail-fast connection (the producer): a write made while Redis is away fails at once. */
  redis: Redis;
  prefix: string;
  /** Characters streamed per invocation or execution (LIVE_LOGS_MAX_CHARS); past it one notice. */
  maxCallChars: number;
  /** Expiry, renewed on every write (LIVE_LOGS_TTL_SECONDS). */
  ttlSeconds: number;
  /** Characters waiting for Redis, all streams together; past it output is dropped. Default 8 Mi. */
  maxPendingChars?: number;
  /**
   * How long a queued entry waits for others to join its write. Default 0: the next event-loop
   * turn. A few ms let the lines of several calls (and a node's request log) share one write,
   * where each write costs both processes a wake-up. A call's `end` never waits: it and
   * everything queued before it go on the next turn.
   */
  batchMs?: number;
  /**
   * A batch could not be written; telemetry never fails a call, so this is all that happens.
   * Not through a logger whose lines come back here (a node's log): each failure would feed the next.
   */
  onError?: (err: Error) => void;
}

export interface LogWriterStats {
  /** Entries written to Redis. */
  written: number;
  /** Characters not streamed: past a call's budget, or dropped while Redis was slow or away. */
  droppedChars: number;
  /** Entries lost to failed writes. */
  failedEntries: number;
}

interface Queued {
  key: string;
  kind: LogKind;
  fields: string[];
  /** Characters of text, for the pending bound; 0 for an end. */
  chars: number;
  /** Seconds the stream is kept after this write. */
  ttl: number;
}

/**
 * A call that printed nothing still gets its `end` entry, for whoever follows it now; kept
 * this long only (the route answers a later request's end from the job), so that a million
 * quiet calls a day are not a million streams kept for a day.
 */
const QUIET_END_TTL_SECONDS = 300;

/** Cuts before `n` characters without splitting a surrogate pair. */
function cutAt(text: string, n: number): number {
  if (n >= text.length) return text.length;
  const code = text.charCodeAt(n - 1);
  return code >= 0xd800 && code <= 0xdbff ? n - 1 : n;
}

const cutNotice = (chars: number) =>
  `\n[dockhand] live log limit of ${chars} characters reached; the rest of this call's output is not streamed.\n`;

/**
 * Appends are synchronous and only queue: one flush per event-loop turn (or per `batchMs`) writes everything
 * queued as one pipeline (XADD per entry, consecutive pieces of a stream joined; EXPIRE per
 * stream), one flush at a time, so a chatty call costs a round trip per batch, not per line.
 * Nothing here throws into the caller or waits on Redis.
 */
export function createLogWriter(options: LogWriterOptions) {
  const { redis, prefix, maxCallChars, ttlSeconds } = options;
  const maxPendingChars = options.maxPendingChars ?? 8 * 1024 * 1024;
  // Characters streamed per open call; a call's entry goes at its end (bounded: a call whose
  // end never comes, its worker gone, is forgotten oldest first).
  const budgets = new Map<string, { chars: number; cut: boolean }>();
  const MAX_OPEN_CALLS = 10_000;
  let queue: Queued[] = [];
  let pendingChars = 0;
  let scheduled = false;
  let flushing: Promise<void> | undefined;
  const stats: LogWriterStats = { written: 0, droppedChars: 0, failedEntries: 0 };

  const batchMs = options.batchMs ?? 0;
  let timer: NodeJS.Timeout | undefined;
  // An `end` is queued: the call is over and a reader may ask for its whole log at once, so its
  // batch goes on the next turn, never after the job is seen done.
  let urgent = false;
  const schedule = () => {
    if (flushing) return;
    if (scheduled && !(urgent && timer)) return;
    clearTimeout(timer);
    timer = undefined;
    scheduled = true;
    // Unref'd: a pending batch never keeps a process alive; a role's close() flushes it.
    if (batchMs > 0 && !urgent) timer = setTimeout(flushOnce, batchMs).unref();
    else setImmediate(flushOnce);
  };

  const enqueueText = (key: string, kind: LogKind, text: string, stream: LogStreamName, ts: number) => {
    const { entryChars } = STREAM_LIMITS[kind];
    let rest = text;
    while (rest.length > 0) {
      const last = queue.at(-1);
      // The previous entry of the same stream, if it has room: fewer, larger entries.
      if (last && last.key === key && last.fields[1] === 'log' && last.fields[3] === stream) {
        const room = entryChars - (last.fields[5] as string).length;
        if (room > 0) {
          const n = cutAt(rest, Math.min(room, rest.length));
          if (n > 0) {
            last.fields[5] += rest.slice(0, n);
            last.chars += n;
            pendingChars += n;
            rest = rest.slice(n);
            continue;
          }
        }
      }
      const n = Math.max(1, cutAt(rest, entryChars));
      const piece = rest.slice(0, n);
      queue.push({
        key,
        kind,
        fields: ['type', 'log', 'stream', stream, 'text', piece, 'ts', String(ts)],
        chars: piece.length,
        ttl: ttlSeconds,
      });
      pendingChars += piece.length;
      rest = rest.slice(n);
    }
    schedule();
  };

  function flushOnce(): void {
    scheduled = false;
    clearTimeout(timer);
    timer = undefined;
    if (flushing || queue.length === 0) return;
    urgent = false;
    const batch = queue;
    queue = [];
    pendingChars = 0;
    const pipeline = redis.pipeline();
    const touched = new Map<string, number>();
    for (const entry of batch) {
      const { maxEntries } = STREAM_LIMITS[entry.kind];
      pipeline.xadd(entry.key, 'MAXLEN', '~', String(maxEntries), '*', ...entry.fields);
      touched.set(entry.key, Math.max(touched.get(entry.key) ?? 0, entry.ttl));
    }
    for (const [key, ttl] of touched) pipeline.expire(key, ttl);
    flushing = pipeline
      .exec()
      .then(
        (results) => {
          let failed = 0;
          for (const [err] of (results ?? []).slice(0, batch.length)) if (err) failed++;
          stats.written += batch.length - failed;
          if (failed > 0) {
            stats.failedEntries += failed;
            options.onError?.(new Error(`${failed} live log entries were refused by Redis.`));
          }
        },
        (err: Error) => {
          stats.failedEntries += batch.length;
          options.onError?.(err);
        },
      )
      .finally(() => {
        flushing = undefined;
        if (queue.length > 0) schedule();
      });
  }

  return {
    /**
     * Queues a piece of output. A call's output past its budget is replaced by one notice;
     * a node's lines longer than an entry are cut. Never throws, never waits.
     */
    append(kind: LogKind, id: string, chunk: string, stream: LogStreamName = 'stdout'): void {
      try {
        if (typeof chunk !== 'string' || chunk.length === 0) return;
        const key = logStreamKey(prefix, kind, id);
        const ts = Date.now();
        let text = chunk;
        if (kind === 'node') {
          const { entryChars } = STREAM_LIMITS.node;
          if (text.length > entryChars) {
            stats.droppedChars += text.length - entryChars;
            text = `${text.slice(0, cutAt(text, entryChars - 8))} [cut]\n`;
          }
        } else {
          let budget = budgets.get(key);
          if (!budget) {
            if (budgets.size >= MAX_OPEN_CALLS) budgets.delete(budgets.keys().next().value as string);
            budget = { chars: 0, cut: false };
            budgets.set(key, budget);
          }
          if (budget.cut) {
            stats.droppedChars += text.length;
            return;
          }
          const room = maxCallChars - budget.chars;
          if (text.length > room) {
            budget.cut = true;
            budget.chars = maxCallChars;
            const kept = text.slice(0, cutAt(text, room));
            stats.droppedChars += text.length - kept.length;
            if (kept) enqueueText(key, kind, kept, stream, ts);
            // Always queued, whatever is pending: the reader must learn that output was cut.
            enqueueText(key, kind, cutNotice(maxCallChars), 'stderr', ts);
            return;
          }
          budget.chars += text.length;
        }
        if (pendingChars + text.length > maxPendingChars) {
          stats.droppedChars += text.length;
          return;
        }
        enqueueText(key, kind, text, stream, ts);
      } catch {
        stats.failedEntries++;
      }
    },

    /** Closes a call's stream: readers send `end` with this status and stop. */
    end(kind: LogKind, id: string, status = 'ended'): void {
      try {
        const key = logStreamKey(prefix, kind, id);
        // No budget: nothing was printed (or, past 10,000 open calls, its count was let go:
        // then the stream goes sooner, never later).
        const printed = (budgets.get(key)?.chars ?? 0) > 0;
        budgets.delete(key);
        queue.push({
          key,
          kind,
          fields: [
            'type',
            'end',
            'status',
            String(status).slice(0, MAX_STATUS_CHARS),
            'ts',
            String(Date.now()),
          ],
          chars: 0,
          ttl: printed ? ttlSeconds : Math.min(ttlSeconds, QUIET_END_TTL_SECONDS),
        });
        urgent = true;
        schedule();
      } catch {
        stats.failedEntries++;
      }
    },

    /** Resolves when everything queued so far has been written (or has failed). */
    async flush(): Promise<void> {
      while (flushing || queue.length > 0) {
        if (flushing) await flushing;
        else flushOnce();
      }
    },

    stats(): LogWriterStats {
      return { ...stats };
    },
  };
}
export type LogWriter = ReturnType<typeof createLogWriter>;

/** True for an id a node's log may be kept under (the node store decides which exist). */
export const isNodeId = (id: string) => NODE_ID.test(id);

/** The writer's losses, for Prometheus: read when scraped. */
export function registerLogWriterMetrics(registry: Registry, writer: Pick<LogWriter, 'stats'>): void {
  new Counter({
    name: 'dockhand_live_log_dropped_chars_total',
    help: "Characters of output not streamed: past a call's LIVE_LOGS_MAX_CHARS, or dropped while Redis was slow or away.",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(writer.stats().droppedChars);
    },
  });
  new Counter({
    name: 'dockhand_live_log_write_failures_total',
    help: 'Live log entries that could not be written to Redis (the calls themselves were not affected).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(writer.stats().failedEntries);
    },
  });
}
