import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { StalledClientError } from '../core/errors.ts';

/**
 * Server-Sent Events on a raw response (after reply.hijack()), written by hand: neither
 * @fastify/sse nor fastify-sse-v2 is installed, and the framing is a few lines of text. Doing
 * it here also keeps backpressure in our hands: `event()` answers false when the socket's
 * buffer is full, and the caller waits for `drained()` before reading more, so a client that
 * does not read costs at most one event past the socket's high-water mark.
 */
export class EventStream {
  readonly #res: ServerResponse;

  constructor(res: ServerResponse) {
    this.#res = res;
  }

  /** Status 200 and the event-stream headers, sent at once so the client knows it is connected. */
  open(headers: OutgoingHttpHeaders = {}): void {
    this.#res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      // nginx buffers responses unless told otherwise; events must pass as they come.
      'x-accel-buffering': 'no',
    });
    this.#res.flushHeaders();
  }

  /**
   * One event. `data` is JSON, which never holds a raw newline, so no text a function prints
   * can end the event early or forge a field. False: wait for drained() before the next.
   */
  event(name: string, data: unknown, id?: string): boolean {
    if (this.#res.destroyed || this.#res.writableEnded) return true;
    return this.#res.write(`${id ? `id: ${id}\n` : ''}event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** A comment line: ignored by clients, it keeps proxies from closing an idle connection. */
  comment(text: string): boolean {
    if (this.#res.destroyed || this.#res.writableEnded) return true;
    return this.#res.write(`: ${text}\n\n`);
  }

  /** Bytes written but not yet taken by the socket. */
  get buffered(): number {
    return this.#res.writableLength;
  }

  /**
   * Resolves when the client has taken what was buffered, or the stream is closed or aborted;
   * rejects with StalledClientError when it reads nothing for `stallMs`.
   */
  drained(stallMs: number, signal: AbortSignal): Promise<void> {
    const res = this.#res;
    if (!res.writableNeedDrain || res.destroyed || signal.aborted) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        res.off('drain', onDrain);
        res.off('close', onDrain);
        signal.removeEventListener('abort', onDrain);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = () => done();
      const timer = setTimeout(() => done(new StalledClientError(stallMs)), stallMs);
      res.on('drain', onDrain);
      res.on('close', onDrain);
      signal.addEventListener('abort', onDrain, { once: true });
    });
  }

  /** Ends the response; `abort` drops what is still buffered (a stalled client) instead. */
  close({ abort = false }: { abort?: boolean } = {}): void {
    if (abort) this.#res.destroy();
    else if (!this.#res.writableEnded) this.#res.end();
  }
}
