import { PassThrough, type Writable } from 'node:stream';

/** Marks a reply line from a bootstrap; everything else on stdout is the function's own output. */
export const FRAME_MARK = '\x1eDH ';

export interface Frame {
  type: string;
  id?: string;
  [key: string]: unknown;
}

export class ChannelClosedError extends Error {
  constructor(message = 'The sandbox closed its channel.') {
    super(message);
    this.name = 'ChannelClosedError';
  }
}

export class OutputCapError extends Error {
  constructor(cap: number) {
    super(`The function wrote more than ${cap} bytes outside its log capture.`);
    this.name = 'OutputCapError';
  }
}

/**
 * Request/response over a bootstrap's stdin and stdout: one JSON line out, replies matched by
 * id. Stray output (not framed) is collected as raw log, up to a cap; past it the channel
 * fails, because a process that floods stdout would otherwise fill the worker's memory.
 */
export class FrameChannel {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  #input: Writable;
  #buffer = '';
  #pending = new Map<string, { resolve: (f: Frame) => void; reject: (e: Error) => void }>();
  #waiters: Array<{ type: string; resolve: (f: Frame) => void; reject: (e: Error) => void }> = [];
  #raw: string[] = [];
  #unclaimed: Frame[] = [];
  #rawBytes = 0;
  #closed: Error | undefined;
  #seq = 0;
  readonly rawCap: number;

  constructor(input: Writable, rawCap = 1024 * 1024) {
    this.#input = input;
    this.rawCap = rawCap;
    this.stdout.setEncoding('utf8');
    this.stdout.on('data', (chunk: string) => this.#onStdout(chunk));
    this.stderr.setEncoding('utf8');
    this.stderr.on('data', (chunk: string) => this.#onRaw(chunk));
  }

  #onStdout(chunk: string) {
    this.#buffer += chunk;
    for (let nl = this.#buffer.indexOf('\n'); nl >= 0; nl = this.#buffer.indexOf('\n')) {
      const line = this.#buffer.slice(0, nl);
      this.#buffer = this.#buffer.slice(nl + 1);
      if (line.startsWith(FRAME_MARK)) this.#onFrame(line.slice(FRAME_MARK.length));
      else this.#onRaw(`${line}\n`);
    }
    // An unterminated line this long is not a frame in progress but a flood.
    if (this.#buffer.length > this.rawCap && !this.#buffer.startsWith(FRAME_MARK)) {
      this.#onRaw(this.#buffer);
      this.#buffer = '';
    }
  }

  #onRaw(text: string) {
    this.#rawBytes += text.length;
    if (this.#rawBytes > this.rawCap) return this.close(new OutputCapError(this.rawCap));
    this.#raw.push(text);
  }

  #onFrame(json: string) {
    let frame: Frame;
    try {
      frame = JSON.parse(json);
    } catch {
      return;
    }
    if (frame.id && this.#pending.has(frame.id)) {
      const p = this.#pending.get(frame.id);
      this.#pending.delete(frame.id);
      p?.resolve(frame);
      return;
    }
    const waiter = this.#waiters.findIndex((w) => w.type === frame.type);
    if (waiter >= 0) {
      const [w] = this.#waiters.splice(waiter, 1);
      w?.resolve(frame);
    } else if (frame.type === 'fatal') {
      this.close(new ChannelClosedError(`The runtime crashed: ${JSON.stringify(frame.error)}`));
    } else if (this.#unclaimed.length < 16) {
      // `ready` can arrive before anyone waits for it (a fast start, a slow inspect): keep it.
      this.#unclaimed.push(frame);
    }
  }

  /** Resolves with the next unsolicited frame of a type (the bootstrap's `ready`), even one already received. */
  waitFor(type: string, timeoutMs = 30_000): Promise<Frame> {
    const earlier = this.#unclaimed.findIndex((f) => f.type === type);
    if (earlier >= 0) return Promise.resolve(this.#unclaimed.splice(earlier, 1)[0] as Frame);
    if (this.#closed) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.resolve !== done);
        reject(new ChannelClosedError(`No ${type} frame within ${timeoutMs} ms.`));
      }, timeoutMs);
      const done = (frame: Frame) => {
        clearTimeout(timer);
        resolve(frame);
      };
      this.#waiters.push({
        type,
        resolve: done,
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
    });
  }

  request(message: Omit<Frame, 'id'>): Promise<Frame> {
    if (this.#closed) return Promise.reject(this.#closed);
    const id = String(++this.#seq);
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#input.write(`${JSON.stringify({ ...message, id })}\n`);
    });
  }

  /** Output that was not a reply (a child process writing to the terminal), since the last call. */
  takeRaw(): string {
    const text = this.#raw.join('');
    this.#raw = [];
    this.#rawBytes = 0;
    return text;
  }

  get closed(): Error | undefined {
    return this.#closed;
  }

  close(reason: Error = new ChannelClosedError()): void {
    if (this.#closed) return;
    this.#closed = reason;
    for (const p of this.#pending.values()) p.reject(reason);
    for (const w of this.#waiters) w.reject(reason);
    this.#pending.clear();
    this.#waiters = [];
  }
}
