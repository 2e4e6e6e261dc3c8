import { PassThrough, type Writable } from 'node:stream';
import { ChannelClosedError, FrameCapError, OutputCapError } from '../core/errors.ts';
import type { OutputSink } from './sandbox.ts';

/** Marks a reply line from a bootstrap; everything else on stdout is the function's own output. */
export const FRAME_MARK = '\x1eDH ';
const MARK = Buffer.from(FRAME_MARK);
const NEWLINE = 0x0a;

/** Lambda's limit for a synchronous response: 6 MiB of serialized result. */
export const DEFAULT_MAX_RESULT_BYTES = 6 * 1024 * 1024;

/**
 * Room in a reply frame besides the result. A bootstrap keeps 256 Ki characters of log, which
 * JSON can escape to 12 bytes each (python's `\ud83d\ude00` for one emoji): 3 MiB; errors are
 * cut to 64 Ki characters; the rest of the envelope is small.
 */
export const FRAME_HEADROOM_BYTES = 4 * 1024 * 1024;

export interface Frame {
  type: string;
  id?: string;
  [key: string]: unknown;
}

export interface FrameChannelOptions {
  /** Bytes of unframed output tolerated between two takeRaw() calls. Default 1 MiB. */
  rawCap?: number;
  /**
   * Largest serialized result a bootstrap may return; the reply frame cap is this plus
   * FRAME_HEADROOM_BYTES. Default 6 MiB (6,291,456 bytes), Lambda's.
   */
  maxResultBytes?: number;
}

/**
 * Request/response over a bootstrap's stdin and stdout: one JSON line out, replies matched by
 * id. Every line is capped while it arrives (stray output at rawCap, replies at the frame cap);
 * past a cap the channel closes and drops what follows, because a process that floods stdout
 * would otherwise fill the worker's memory. Lines are kept as the chunks they came in, each
 * byte is searched for the newline once, and a line is joined once, when complete.
 */
export class FrameChannel {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly rawCap: number;
  readonly maxResultBytes: number;
  readonly maxFrameBytes: number;
  #input: Writable;
  #line: Buffer[] = [];
  #lineBytes = 0;
  #lineIsFrame: boolean | undefined;
  #peakBytes = 0;
  #scannedBytes = 0;
  #pending = new Map<string, { resolve: (f: Frame) => void; reject: (e: Error) => void }>();
  #waiters: Array<{ type: string; resolve: (f: Frame) => void; reject: (e: Error) => void }> = [];
  #raw: string[] = [];
  #unclaimed: Frame[] = [];
  #rawBytes = 0;
  #closed: Error | undefined;
  #seq = 0;
  #sink: OutputSink | undefined;

  constructor(input: Writable, options: FrameChannelOptions = {}) {
    this.#input = input;
    this.rawCap = options.rawCap ?? 1024 * 1024;
    this.maxResultBytes = options.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES;
    this.maxFrameBytes = this.maxResultBytes + FRAME_HEADROOM_BYTES;
    this.stdout.on('data', (chunk: Buffer) => this.#onStdout(chunk));
    this.stderr.setEncoding('utf8');
    this.stderr.on('data', (chunk: string) => this.#onRaw(chunk, 'stderr'));
  }

  /** See SandboxChannel.setOutputSink: the invoker sets it for a call and unsets it after. */
  setOutputSink(sink: OutputSink | undefined): void {
    this.#sink = sink;
  }

  #emit(text: string, stream: 'stdout' | 'stderr') {
    try {
      this.#sink?.(text, stream);
    } catch {
      // A sink is telemetry: its failure is not the channel's.
    }
  }

  /** Bytes held for the line in progress, the most ever held, and bytes searched for a newline. */
  stats(): { bufferedBytes: number; peakBufferedBytes: number; scannedBytes: number } {
    return {
      bufferedBytes: this.#lineBytes,
      peakBufferedBytes: this.#peakBytes,
      scannedBytes: this.#scannedBytes,
    };
  }

  #onStdout(chunk: Buffer) {
    let start = 0;
    while (start < chunk.length && !this.#closed) {
      const nl = chunk.indexOf(NEWLINE, start);
      const end = nl < 0 ? chunk.length : nl;
      this.#scannedBytes += (nl < 0 ? end : nl + 1) - start;
      if (!this.#append(chunk.subarray(start, end))) return;
      if (nl < 0) return;
      this.#endLine();
      start = nl + 1;
    }
  }

  /** Adds bytes to the line in progress, or closes the channel when they take it past its cap. */
  #append(part: Buffer): boolean {
    if (part.length === 0) return true;
    const bytes = this.#lineBytes + part.length;
    if (this.#lineIsFrame === undefined && bytes >= MARK.length) {
      this.#lineIsFrame = Buffer.concat([...this.#line, part], MARK.length).equals(MARK);
    }
    // Until the mark is known a line is at most 3 bytes, under either cap.
    if (this.#lineIsFrame === true && bytes > this.maxFrameBytes) {
      this.close(new FrameCapError(this.maxFrameBytes));
      return false;
    }
    if (this.#lineIsFrame === false && this.#rawBytes + bytes > this.rawCap) {
      this.close(new OutputCapError(this.rawCap));
      return false;
    }
    this.#line.push(part);
    this.#lineBytes = bytes;
    if (bytes > this.#peakBytes) this.#peakBytes = bytes;
    return true;
  }

  #endLine() {
    const line =
      this.#line.length === 1 ? (this.#line[0] as Buffer) : Buffer.concat(this.#line, this.#lineBytes);
    const isFrame = this.#lineIsFrame === true;
    this.#line = [];
    this.#lineBytes = 0;
    this.#lineIsFrame = undefined;
    if (isFrame) this.#onFrame(line.toString('utf8', MARK.length));
    else this.#onRaw(`${line.toString('utf8')}\n`);
  }

  #onRaw(text: string, stream: 'stdout' | 'stderr' = 'stdout') {
    this.#rawBytes += text.length;
    if (this.#rawBytes > this.rawCap) return this.close(new OutputCapError(this.rawCap));
    this.#raw.push(text);
    if (this.#sink) this.#emit(text, stream);
  }

  #onFrame(json: string) {
    let frame: Frame;
    try {
      frame = JSON.parse(json);
    } catch {
      // Not a frame after all: the function's own output, counted like the rest.
      return this.#onRaw(`${FRAME_MARK}${json}\n`);
    }
    if (frame.id && this.#pending.has(frame.id)) {
      const p = this.#pending.get(frame.id);
      this.#pending.delete(frame.id);
      p?.resolve(frame);
      return;
    }
    if (frame.type === 'log') {
      // What the handler printed, sent as it was written (live logs). Handed on, never kept:
      // the reply carries the call's logs, so a flood of these holds no memory here; without
      // a sink (between calls, or a call nobody follows) they are dropped.
      if (typeof frame.text === 'string')
        this.#emit(frame.text, frame.stream === 'stderr' ? 'stderr' : 'stdout');
      return;
    }
    const waiter = this.#waiters.findIndex((w) => w.type === frame.type);
    if (waiter >= 0) {
      const [w] = this.#waiters.splice(waiter, 1);
      w?.resolve(frame);
    } else if (frame.type === 'fatal') {
      this.close(new ChannelClosedError(`The runtime crashed: ${JSON.stringify(frame.error)}`));
    } else if (frame.type === 'ready' && this.#unclaimed.length === 0) {
      // `ready` can arrive before anyone waits for it (a fast start, a slow inspect): keep that one.
      this.#unclaimed.push(frame);
    } else {
      // A marked line that answers nothing is the function's own output: counted against the
      // output cap like any other, never kept aside (a flood of them would hold memory).
      this.#onRaw(`${FRAME_MARK}${json}\n`);
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

  /** Why the channel closed, if it did; a closed channel's container is never reused. */
  get closed(): Error | undefined {
    return this.#closed;
  }

  /** True when the channel closed because the sandbox wrote past a cap (not because it exited). */
  get overLimit(): boolean {
    return this.#closed instanceof FrameCapError || this.#closed instanceof OutputCapError;
  }

  close(reason: Error = new ChannelClosedError()): void {
    if (this.#closed) return;
    this.#closed = reason;
    // What arrives after this is dropped unread (see #onStdout), and the line in progress goes now.
    this.#line = [];
    this.#lineBytes = 0;
    for (const p of this.#pending.values()) p.reject(reason);
    for (const w of this.#waiters) w.reject(reason);
    this.#pending.clear();
    this.#waiters = [];
  }
}
