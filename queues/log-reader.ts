import type { Redis } from 'ioredis';
import {
  type LogKind,
  type LogStreamName,
  logStreamKey,
  MAX_STATUS_CHARS,
  STREAM_LIMITS,
} from './log-stream.ts';

/** One entry read back: a piece of output, or the end of the call. `id` is the stream entry's id. */
export type LogEntry =
  | { id: string; type: 'log'; stream: LogStreamName; text: string; ts: number }
  | { id: string; type: 'end'; status: string; ts: number };

/**
 * A Redis stream entry id, as a client may send it back (Last-Event-ID). Each part is a 64-bit
 * number to Redis, which answers an error for more (a 500, or a stream cut at once, before
 * this was bounded); 15 digits hold any millisecond clock for 30,000 years and never overflow.
 */
export const STREAM_ID_PATTERN = '^[0-9]{1,15}-[0-9]{1,15}$';
const STREAM_ID = new RegExp(STREAM_ID_PATTERN);

type RawEntry = [id: string, fields: string[]];

/**
 * Redis is not a trust boundary: anything that is not an entry the writer could have made is
 * skipped, and text is held to the writer's entry size, so a forged entry cannot make a
 * follower hold more than the writer would.
 */
export function parseEntry(kind: LogKind, raw: unknown): LogEntry | undefined {
  if (!Array.isArray(raw) || typeof raw[0] !== 'string' || !STREAM_ID.test(raw[0])) return undefined;
  const [id, fields] = raw as RawEntry;
  if (!Array.isArray(fields)) return undefined;
  const get = (name: string) => {
    for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
    return undefined;
  };
  const stamped = Number(get('ts'));
  const ts = Number.isFinite(stamped) ? stamped : Number(id.split('-')[0]);
  const type = get('type');
  if (type === 'log') {
    const text = get('text');
    if (typeof text !== 'string') return undefined;
    return {
      id,
      type: 'log',
      stream: get('stream') === 'stderr' ? 'stderr' : 'stdout',
      text: text.slice(0, STREAM_LIMITS[kind].entryChars),
      ts,
    };
  }
  if (type === 'end') {
    const status = get('status');
    return {
      id,
      type: 'end',
      status: typeof status === 'string' ? status.slice(0, MAX_STATUS_CHARS) : '',
      ts,
    };
  }
  return undefined;
}

export interface ReadOptions {
  /** Start after this entry id (exclusive). Default: from the beginning. */
  after?: string;
  /** Entries per batch. Default 32. */
  count?: number;
  /**
   * Keep reading as entries are added (XREAD BLOCK on a connection of its own); an empty batch
   * means `blockMs` passed with nothing new. Without it: what is there, then done.
   */
  follow?: boolean;
  /** How long one blocking read waits. Default 15 s. */
  blockMs?: number;
  /** Ends the reading, closing its connection at once (a blocking read included). */
  signal?: AbortSignal;
}

export interface LogReaderDeps {
  /** A fail-fast connection for replays (the producer). */
  redis: Redis;
  prefix: string;
  /** A new connection of its own for one follower's blocking reads; closed when it stops. */
  connect: () => Promise<Redis>;
}

/**
 * Reads a stream back in batches, one batch at a time: the next read is made only when the
 * caller asks for the next batch, so a caller that waits for its client (backpressure) keeps
 * Redis waiting too, and never holds more than one batch.
 */
export function createLogReader(deps: LogReaderDeps) {
  async function* replay(kind: LogKind, key: string, after: string, count: number, signal?: AbortSignal) {
    let cursor = after;
    while (!signal?.aborted) {
      const raw = (await deps.redis.xrange(key, `(${cursor}`, '+', 'COUNT', count)) as RawEntry[];
      if (raw.length === 0) return cursor;
      cursor = (raw.at(-1) as RawEntry)[0];
      yield raw.map((r) => parseEntry(kind, r)).filter((e): e is LogEntry => e !== undefined);
    }
    return cursor;
  }

  async function* follow(kind: LogKind, key: string, after: string, options: ReadOptions) {
    const { signal, count = 32, blockMs = 15_000 } = options;
    if (signal?.aborted) return;
    const connection = await deps.connect();
    const stop = () => connection.disconnect();
    signal?.addEventListener('abort', stop, { once: true });
    let cursor = after;
    try {
      while (!signal?.aborted) {
        const reply = (await connection.xread(
          'COUNT',
          count,
          'BLOCK',
          blockMs,
          'STREAMS',
          key,
          cursor,
        )) as Array<[string, RawEntry[]]> | null;
        const raw = reply?.[0]?.[1] ?? [];
        if (raw.length > 0) cursor = (raw.at(-1) as RawEntry)[0];
        yield raw.map((r) => parseEntry(kind, r)).filter((e): e is LogEntry => e !== undefined);
      }
    } catch (err) {
      // Aborted: the disconnect is what ended the blocking read.
      if (!signal?.aborted) throw err;
    } finally {
      signal?.removeEventListener('abort', stop);
      connection.disconnect();
    }
  }

  return {
    /** Is there any entry after `after`? (A reconnecting client that has seen everything gets 204.) */
    async hasAfter(kind: LogKind, id: string, after: string): Promise<boolean> {
      if (!STREAM_ID.test(after)) return true;
      const key = logStreamKey(deps.prefix, kind, id);
      return (await deps.redis.xrange(key, `(${after}`, '+', 'COUNT', 1)).length > 0;
    },

    /** Batches of entries after `after`; with `follow`, forever (until aborted or the caller stops). */
    entries(kind: LogKind, id: string, options: ReadOptions = {}): AsyncGenerator<LogEntry[]> {
      const key = logStreamKey(deps.prefix, kind, id);
      const after = options.after && STREAM_ID.test(options.after) ? options.after : '0-0';
      return options.follow
        ? follow(kind, key, after, options)
        : (replay(kind, key, after, options.count ?? 32, options.signal) as AsyncGenerator<LogEntry[]>);
    },
  };
}
export type LogReader = ReturnType<typeof createLogReader>;
