import { request } from 'node:http';
import type { Test } from 'tap';

export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

export interface SseConnection {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Every event so far, in order (comments are not events). */
  events: SseEvent[];
  /** Comment lines so far (`: ping`). */
  comments: string[];
  /** The body as text, when the answer is not an event stream (an error's JSON). */
  body(): string;
  /** The next event not yet taken by next(); rejects if the stream ends first. */
  next(): Promise<SseEvent>;
  /** Settles when the server has ended the response. */
  ended: Promise<void>;
  close(): void;
}

/**
 * A minimal EventSource for tests: one GET, parsed as Server-Sent Events while it arrives.
 * No connection pooling (agent: false), so nothing outlives close() or the server's end.
 */
export function openSse(t: Test, url: string, headers: Record<string, string> = {}): Promise<SseConnection> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { agent: false, headers: { accept: 'text/event-stream', ...headers } },
      (res) => {
        res.setEncoding('utf8');
        const events: SseEvent[] = [];
        const comments: string[] = [];
        let raw = '';
        let pending = '';
        let taken = 0;
        let waiters: Array<() => void> = [];
        let done = false;
        const wake = () => {
          const w = waiters;
          waiters = [];
          for (const f of w) f();
        };
        const ended = new Promise<void>((r) => {
          const finish = () => {
            done = true;
            wake();
            r();
          };
          res.on('end', finish);
          res.on('close', finish);
          res.on('error', finish);
        });
        res.on('data', (chunk: string) => {
          if (raw.length < 64 * 1024) raw += chunk;
          pending += chunk;
          let cut = pending.indexOf('\n\n');
          while (cut >= 0) {
            const block = pending.slice(0, cut);
            pending = pending.slice(cut + 2);
            const event: SseEvent = { event: 'message', data: '' };
            const data: string[] = [];
            let isEvent = false;
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) comments.push(line.slice(1).trim());
              else {
                const colon = line.indexOf(':');
                const field = colon < 0 ? line : line.slice(0, colon);
                const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
                isEvent = true;
                if (field === 'event') event.event = value;
                else if (field === 'data') data.push(value);
                else if (field === 'id') event.id = value;
              }
            }
            if (isEvent) {
              event.data = data.join('\n');
              events.push(event);
            }
            cut = pending.indexOf('\n\n');
          }
          wake();
        });
        const connection: SseConnection = {
          status: res.statusCode ?? 0,
          headers: res.headers,
          events,
          comments,
          body: () => raw,
          ended,
          next() {
            return new Promise((resolveNext, rejectNext) => {
              const check = () => {
                if (events.length > taken) resolveNext(events[taken++] as SseEvent);
                else if (done) rejectNext(new Error(`the stream ended after ${events.length} events`));
                else waiters.push(check);
              };
              check();
            });
          },
          close() {
            req.destroy();
            res.destroy();
          },
        };
        t.teardown(() => connection.close());
        resolve(connection);
      },
    );
    req.on('error', reject);
    req.end();
  });
}
