import { once } from 'node:events';
import { PassThrough, type Writable } from 'node:stream';
import t from 'tap';
import { FrameCapError, OutputCapError } from '../../core/errors.ts';
import type { CgroupProfiler } from '../../runtimes/cgroup-profiler.ts';
import type { DockerSandbox } from '../../runtimes/docker-sandbox.ts';
import {
  DEFAULT_MAX_RESULT_BYTES,
  FRAME_HEADROOM_BYTES,
  FRAME_MARK,
  FrameChannel,
} from '../../runtimes/frame-channel.ts';
import { createInvoker } from '../../runtimes/invoker.ts';
import type { FunctionImage, WarmPool } from '../../runtimes/warm-pool.ts';
import { leakCheck } from '../helpers/leak-check.ts';

leakCheck(t);

const MiB = 1024 * 1024;

/** Writes in order, waiting when the stream asks to: what a docker attach stream does to us. */
async function feed(stream: Writable, chunks: Iterable<Buffer | string>) {
  for (const chunk of chunks) if (!stream.write(chunk)) await once(stream, 'drain');
}

function* slices(data: Buffer, size: number) {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

/** The id the channel gave its last request. */
function lastId(sent: string[]) {
  return JSON.parse(sent.at(-1) as string).id as string;
}

function channelWithInput(options?: ConstructorParameters<typeof FrameChannel>[1]) {
  const input = new PassThrough();
  const sent: string[] = [];
  input.on('data', (d) => sent.push(String(d)));
  return { channel: new FrameChannel(input, options), sent };
}

t.test('the reply frame cap is the result cap plus room for logs, 10 MiB by default', async (t) => {
  const { channel } = channelWithInput();
  t.equal(DEFAULT_MAX_RESULT_BYTES, 6_291_456);
  t.equal(channel.maxFrameBytes, 6_291_456 + FRAME_HEADROOM_BYTES);
  t.equal(new FrameChannel(new PassThrough(), { maxResultBytes: 1000 }).maxFrameBytes, 1000 + 4 * MiB);
});

t.test(
  'an unterminated 32 MiB reply line ends the call at the cap and holds no more than the cap',
  async (t) => {
    const { channel } = channelWithInput();
    const pending = channel.request({ type: 'invoke' });
    const chunk = 64 * 1024;
    const flood = Buffer.alloc(32 * MiB, 'x');
    FRAME_MARK.split('').forEach((c, i) => {
      flood[i] = c.charCodeAt(0);
    });
    await feed(channel.stdout, slices(flood, chunk));
    const err = await pending.catch((e: Error) => e);
    t.type(err, FrameCapError);
    t.equal(
      (err as Error).message,
      `The sandbox sent a reply line longer than the ${channel.maxFrameBytes}-byte frame limit, so the call was ended and its container replaced.`,
    );
    t.equal(channel.closed, err, 'the channel is closed: its container will not be reused');
    t.equal(channel.overLimit, true);
    const stats = channel.stats();
    t.ok(
      stats.peakBufferedBytes <= channel.maxFrameBytes,
      `never held more than the cap (${stats.peakBufferedBytes})`,
    );
    t.equal(stats.bufferedBytes, 0, 'the partial line is let go at once');
    t.ok(
      stats.scannedBytes <= channel.maxFrameBytes + chunk,
      `what came after the cap was dropped unread (${stats.scannedBytes} of ${flood.length} bytes scanned)`,
    );
    await t.rejects(channel.request({ type: 'ping' }), FrameCapError, 'and no further call is sent');
  },
);

t.test('a reply line in many small chunks is scanned once, byte for byte', async (t) => {
  const { channel, sent } = channelWithInput();
  const pending = channel.request({ type: 'invoke' });
  const payload = 'y'.repeat(512 * 1024);
  const line = Buffer.from(`${FRAME_MARK}${JSON.stringify({ type: 'result', id: lastId(sent), payload })}\n`);
  await feed(channel.stdout, slices(line, 64));
  t.equal((await pending).payload, payload);
  const stats = channel.stats();
  // Rescanning the whole line per chunk, as before, would be ~line²/128 = 2 GB here.
  t.equal(stats.scannedBytes, line.length, 'each byte searched for the newline exactly once');
  t.equal(stats.bufferedBytes, 0);
  t.ok(stats.peakBufferedBytes < line.length);
});

t.test('a reply split anywhere (inside the mark, inside a character) still arrives whole', async (t) => {
  const { channel, sent } = channelWithInput({ rawCap: 100 });
  const pending = channel.request({ type: 'invoke' });
  const result = { text: 'é€😀', big: 'z'.repeat(1000) };
  const frame = Buffer.from(`${FRAME_MARK}${JSON.stringify({ type: 'result', id: lastId(sent), result })}\n`);
  const euro = frame.indexOf(Buffer.from('€'));
  const stream = Buffer.concat([Buffer.from('a child wrote this\n'), frame, Buffer.from('and this\n')]);
  const at = [20, 21, 22, 19 + euro + 1, 19 + euro + 2, 600];
  const chunks = [0, ...at].map((from, i) => stream.subarray(from, at[i] ?? stream.length));
  await feed(channel.stdout, chunks);
  t.same((await pending).result, result);
  t.equal(channel.takeRaw(), 'a child wrote this\nand this\n', 'stray lines around it are log');
  t.equal(channel.closed, undefined, 'a 1 KB reply is over the raw cap (100) but frames have their own');
});

t.test('an unterminated line without the mark is stray output, capped at rawCap', async (t) => {
  const { channel } = channelWithInput({ rawCap: 1000 });
  const pending = channel.request({ type: 'invoke' });
  await feed(channel.stdout, slices(Buffer.alloc(64 * 1024, 'n'), 100));
  await t.rejects(pending, OutputCapError);
  t.ok(channel.stats().peakBufferedBytes <= 1000);
});

// --- the invoker's verdicts, on a real channel with a scripted bootstrap behind it ---

const fn: FunctionImage = {
  name: 'f',
  version: 'v1',
  runtime: 'node20',
  handler: 'index.handler',
  memoryMb: 128,
  network: 'none',
  env: {},
  concurrency: 1,
  loadFiles: async () => ({}),
};

/** One sandbox whose bootstrap answers each invoke with `answer(id, message)`; records how it was released. */
function rig(
  answer: (id: string, message: Record<string, unknown>) => Buffer | string,
  maxResultBytes?: number,
) {
  const input = new PassThrough();
  const channel = new FrameChannel(input, { maxResultBytes });
  const received: Array<Record<string, unknown>> = [];
  input.on('data', (d) => {
    const message = JSON.parse(String(d));
    received.push(message);
    void feed(channel.stdout, slices(Buffer.from(answer(message.id, message)), 64 * 1024));
  });
  const sandbox = { id: 'c1', pid: 1, channel, exited: new Promise(() => {}), destroy: async () => {} };
  const released: boolean[] = [];
  const pool = {
    acquire: async () => ({ sandbox: sandbox as unknown as DockerSandbox, coldStart: false }),
    release: (_fn: FunctionImage, _s: DockerSandbox, healthy: boolean) => released.push(healthy),
  } as unknown as WarmPool;
  const profiler = { resetPeak: async () => true, sample: async () => null } as unknown as CgroupProfiler;
  const invoke = createInvoker({ pool, profiler, maxResultBytes });
  return { invoke: () => invoke(fn, { requestId: 'r1', event: {}, timeoutMs: 60_000 }), received, released };
}
const reply = (message: Record<string, unknown>) => `${FRAME_MARK}${JSON.stringify(message)}\n`;

t.test('the invoker tells the bootstrap the result limit and checks it again itself', async (t) => {
  const ok = rig((id) => reply({ type: 'result', id, ok: true, result: 'x'.repeat(98), logs: '' }), 100);
  const fits = await ok.invoke();
  t.equal(fits.status, 'SUCCESS', '100 bytes of JSON (98 characters and quotes) is at the limit');
  t.equal(ok.received[0]?.maxResultBytes, 100, 'the limit travels with the call');
  t.same(ok.released, [true]);

  const over = rig(
    (id) => reply({ type: 'result', id, ok: true, result: 'x'.repeat(99), logs: 'hi\n' }),
    100,
  );
  const failed = await over.invoke();
  t.equal(failed.status, 'FAILED', 'an image whose bootstrap does not check is still held to it');
  t.same(failed.error, {
    errorType: 'ResultTooLarge',
    errorMessage:
      'The result is 101 bytes, over the 100-byte limit for a function result; put large data in S3/MinIO and return its key instead.',
  });
  t.equal(failed.result, null);
  t.equal(failed.logs, 'hi\n');
  t.same(over.released, [true], 'the channel is intact: the container may serve again');
});

t.test('an oversized reply line fails the call and the container is not reused', async (t) => {
  const huge = rig(() => `${FRAME_MARK}${'q'.repeat(5 * MiB)}`, 100);
  const out = await huge.invoke();
  t.equal(out.status, 'FAILED');
  t.equal(out.error?.errorType, 'OutputLimitError');
  t.match(out.error?.errorMessage, new RegExp(`the ${100 + 4 * MiB}-byte frame limit`));
  t.same(huge.released, [false]);

  const junkAfter = rig(
    (id) => `${reply({ type: 'result', id, ok: true, result: 1 })}${'j'.repeat(2 * MiB)}\n`,
  );
  const served = await junkAfter.invoke();
  t.equal(served.status, 'SUCCESS', 'the reply came before the flood');
  t.same(junkAfter.released, [false], 'but a channel closed by a cap sends its container away');
});

t.test(
  'marked lines that answer nothing are output, counted against the cap, never kept aside',
  async (t) => {
    const { channel } = channelWithInput({ rawCap: MiB });
    const line = `${FRAME_MARK}${JSON.stringify({ type: 'noise', pad: 'x'.repeat(100 * 1024) })}\n`;
    await feed(channel.stdout, [
      `${FRAME_MARK}{"type":"ready"}\n`,
      `${FRAME_MARK}{"type":"ready","again":1}\n`,
    ]);
    t.same(
      await channel.waitFor('ready', 1000),
      { type: 'ready' },
      'the first ready is kept for whoever waits',
    );
    await feed(
      channel.stdout,
      Array.from({ length: 12 }, () => line),
    );
    t.ok(
      channel.closed instanceof OutputCapError,
      '1.2 MiB of unanswered frames is past the 1 MiB output cap',
    );
    await t.rejects(
      channel.waitFor('ready', 50),
      'nothing else was kept: the second ready went to the output',
    );
  },
);
