import { Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { controlMarker } from './exec-init/run-spec.ts';

export type OutputStream = 'stdout' | 'stderr';

/** What dh-init said to the host: the command ended, or it never started (and why). */
export type ControlLine = { kind: 'done' } | { kind: 'error'; message: string };

const MARK_START = 0x1e;
const NEWLINE = 0x0a;
/** A control line is one short sentence; more than this after the marker is not dh-init's. */
const MAX_CONTROL_BYTES = 4096;

/**
 * An exec container's stdout and stderr, interleaved in arrival order and capped while they
 * arrive: past `maxBytes` the rest is counted and dropped (truncated), never buffered, and the
 * command runs on. dh-init's control lines (marked with the container's secret nonce, see
 * dh-init.c) are taken out of stderr, even when they arrive split over chunks; a line carrying
 * another nonce is the command's own output and stays in it.
 */
export class ExecOutput {
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** Live copy of what is kept (never what is dropped past the cap). */
  onOutput: ((chunk: string, stream: OutputStream) => void) | undefined;
  /** Settles with dh-init's control line; never, when the container died before writing one. */
  readonly control: Promise<ControlLine>;
  truncated = false;
  /** Every byte the command wrote, kept or not. */
  bytesSeen = 0;
  readonly #max: number;
  readonly #marker: Buffer;
  readonly #decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  readonly #parts: string[] = [];
  #kept = 0;
  #held: Buffer = Buffer.alloc(0);
  #control: Buffer | undefined;
  #settle!: (line: ControlLine) => void;

  constructor(maxBytes: number, nonce: string) {
    this.#max = maxBytes;
    this.#marker = Buffer.from(controlMarker(nonce));
    this.control = new Promise((resolve) => {
      this.#settle = resolve;
    });
    this.stdout = sink((chunk) => this.#keep(chunk, 'stdout'));
    this.stderr = sink((chunk) => this.#onStderr(chunk));
  }

  /** Everything kept, once the stream has ended. */
  finish(): string {
    if (this.#control === undefined && this.#held.length > 0) {
      this.#keep(this.#held, 'stderr');
      this.#held = Buffer.alloc(0);
    }
    // A character cut by the cap is dropped rather than shown as U+FFFD.
    if (!this.truncated)
      for (const stream of ['stdout', 'stderr'] as const) {
        const rest = this.#decoders[stream].end();
        if (rest) this.#parts.push(rest);
      }
    return this.#parts.join('');
  }

  #onStderr(chunk: Buffer) {
    if (this.#control !== undefined) return this.#onControl(chunk);
    const data = this.#held.length > 0 ? Buffer.concat([this.#held, chunk]) : chunk;
    const at = data.indexOf(this.#marker);
    if (at >= 0) {
      this.#held = Buffer.alloc(0);
      this.#keep(data.subarray(0, at), 'stderr');
      this.#control = Buffer.alloc(0);
      return this.#onControl(data.subarray(at + this.#marker.length));
    }
    // The tail might be the start of a marker split over two chunks: held until the next one.
    const hold = partialSuffix(data, this.#marker);
    this.#keep(data.subarray(0, data.length - hold), 'stderr');
    this.#held = Buffer.from(data.subarray(data.length - hold));
  }

  #onControl(chunk: Buffer) {
    const control = this.#control as Buffer;
    if (control.length >= MAX_CONTROL_BYTES) return;
    const joined = Buffer.concat([control, chunk.subarray(0, MAX_CONTROL_BYTES - control.length)]);
    this.#control = joined;
    const end = joined.indexOf(NEWLINE);
    if (end < 0) return;
    const line = joined.subarray(0, end).toString('utf8');
    this.#settle(line.startsWith('error:') ? { kind: 'error', message: line.slice(6) } : { kind: 'done' });
    this.#control = Buffer.alloc(MAX_CONTROL_BYTES);
  }

  #keep(chunk: Buffer, stream: OutputStream) {
    if (chunk.length === 0) return;
    this.bytesSeen += chunk.length;
    const room = this.#max - this.#kept;
    if (chunk.length > room) this.truncated = true;
    if (room <= 0) return;
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.#kept += part.length;
    const text = this.#decoders[stream].write(part);
    if (!text) return;
    this.#parts.push(text);
    try {
      this.onOutput?.(text, stream);
    } catch {
      // A live-log consumer's failure must not lose the output or stop the run.
    }
  }
}

/** Bytes at the end of `data` that are the start of `marker` (0 when none). */
function partialSuffix(data: Buffer, marker: Buffer): number {
  const from = Math.max(0, data.length - (marker.length - 1));
  for (let i = data.indexOf(MARK_START, from); i >= 0; i = data.indexOf(MARK_START, i + 1)) {
    if (marker.subarray(0, data.length - i).equals(data.subarray(i))) return data.length - i;
  }
  return 0;
}

/** A Writable that hands each chunk over at once, so nothing queues in the stream. */
function sink(take: (chunk: Buffer) => void): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      take(chunk);
      done();
    },
  });
}
