import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { PassThrough } from 'node:stream';
import Fastify from 'fastify';
import { Registry } from 'prom-client';
import t from 'tap';
import logRoutes from '../../api/routes/logs.ts';
import { closeRedis, connectRedis, createRedis } from '../../queues/connection.ts';
import { createLogReader, type LogEntry } from '../../queues/log-reader.ts';
import { createLogWriter, logStreamKey, STREAM_LIMITS } from '../../queues/log-stream.ts';
import { FRAME_MARK, FrameChannel } from '../../runtimes/frame-channel.ts';
import { REDIS_URL, testPrefix, wipePrefix } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { waitFor } from '../helpers/wait-for.ts';

leakCheck(t);

const prefix = testPrefix();
t.teardown(() => wipePrefix(prefix));
const redis = await connectRedis(createRedis(REDIS_URL, 'producer'), REDIS_URL);
t.teardown(() => closeRedis(redis));
const reader = createLogReader({
  redis,
  prefix,
  connect: () => connectRedis(createRedis(REDIS_URL, 'producer'), REDIS_URL),
});
const writerFor = (options: Partial<Parameters<typeof createLogWriter>[0]> = {}) =>
  createLogWriter({ redis, prefix, maxCallChars: 1024 * 1024, ttlSeconds: 3600, ...options });

async function replay(kind: 'invocation' | 'exec' | 'node', id: string): Promise<LogEntry[]> {
  const all: LogEntry[] = [];
  for await (const batch of reader.entries(kind, id)) all.push(...batch);
  return all;
}
const textOf = (entries: LogEntry[]) =>
  entries.map((e) => (e.type === 'log' ? e.text : `<end ${e.status}>`)).join('');

t.test('appends are batched: 5,000 lines made in one turn are a few entries, in order', async (t) => {
  const writer = writerFor();
  let expected = '';
  for (let i = 0; i < 5000; i++) {
    const line = `line ${i}\n`;
    writer.append('invocation', 'batched', line, i % 1000 === 999 ? 'stderr' : 'stdout');
    expected += line;
  }
  writer.end('invocation', 'batched', 'SUCCESS');
  await writer.flush();
  const entries = await replay('invocation', 'batched');
  t.equal(textOf(entries), `${expected}<end SUCCESS>`, 'everything, in order, then the end');
  t.ok(entries.length <= 20, `${entries.length} entries for 5,000 lines (joined per stream, 16 Ki each)`);
  t.same(
    entries.filter((e) => e.type === 'log' && e.stream === 'stderr').map((e) => (e as { text: string }).text),
    ['line 999\n', 'line 1999\n', 'line 2999\n', 'line 3999\n', 'line 4999\n'],
    'streams are kept apart',
  );
  const ttl = await redis.ttl(logStreamKey(prefix, 'invocation', 'batched'));
  t.ok(ttl > 0 && ttl <= 3600, `the stream expires (${ttl} s)`);
  t.same(writer.stats(), { written: entries.length, droppedChars: 0, failedEntries: 0 });
});

t.test(
  "batchMs: lines of several turns wait for one write; a call's end sends it on the next turn",
  async (t) => {
    let pipelines = 0;
    const counting = new Proxy(redis, {
      get: (target, key) =>
        key === 'pipeline'
          ? () => {
              pipelines++;
              return target.pipeline();
            }
          : Reflect.get(target, key),
    });
    // A window far longer than this test: what decides is that nothing is written before it ends.
    const writer = writerFor({ redis: counting, batchMs: 60_000 });
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    writer.append('node', 'batch-node', 'first\n');
    await turn();
    writer.append('invocation', 'batch-call', 'second\n');
    await turn();
    t.equal(pipelines, 0, 'two turns later nothing was written yet');
    // A reader may ask for the whole log as soon as the call is done: the end does not wait.
    writer.end('invocation', 'batch-call', 'SUCCESS');
    await turn();
    t.equal(pipelines, 1, 'the end took everything queued, both streams, in one write, on the next turn');
    await writer.flush();
    t.equal(pipelines, 1);
    t.equal(textOf(await replay('node', 'batch-node')), 'first\n');
    t.equal(textOf(await replay('invocation', 'batch-call')), 'second\n<end SUCCESS>');
  },
);

t.test('a call that printed nothing keeps its end entry minutes, not a day', async (t) => {
  const writer = writerFor({ ttlSeconds: 86_400 });
  writer.end('invocation', 'quiet', 'SUCCESS');
  writer.append('invocation', 'chatty', 'hi\n');
  await writer.flush();
  writer.end('invocation', 'chatty', 'SUCCESS');
  await writer.flush();
  const quiet = await redis.ttl(logStreamKey(prefix, 'invocation', 'quiet'));
  const chatty = await redis.ttl(logStreamKey(prefix, 'invocation', 'chatty'));
  t.ok(quiet > 0 && quiet <= 300, `quiet: ${quiet} s`);
  t.ok(chatty > 86_000, `with output: ${chatty} s`);
  t.equal(textOf(await replay('invocation', 'quiet')), '<end SUCCESS>');
});

t.test("a call's output past its budget is cut once, with a notice", async (t) => {
  const writer = writerFor({ maxCallChars: 1000 });
  writer.append('exec', 'chatty', 'a'.repeat(600));
  writer.append('exec', 'chatty', 'b'.repeat(600));
  writer.append('exec', 'chatty', 'c'.repeat(600));
  writer.end('exec', 'chatty', 'succeeded');
  await writer.flush();
  const entries = await replay('exec', 'chatty');
  t.equal(
    textOf(entries),
    `${'a'.repeat(600)}${'b'.repeat(400)}\n[dockhand] live log limit of 1000 characters reached; the rest of this call's output is not streamed.\n<end succeeded>`,
  );
  t.equal(writer.stats().droppedChars, 800);
  t.equal(entries.find((e) => e.type === 'log' && e.text.includes('[dockhand]'))?.type, 'log');
});

t.test("a node's lines are kept to an entry each; no budget, they never end", async (t) => {
  const writer = writerFor({ maxCallChars: 10 });
  writer.append('node', 'n1', `${'z'.repeat(20_000)}\n`);
  writer.append('node', 'n1', 'short\n');
  await writer.flush();
  const entries = await replay('node', 'n1');
  const text = textOf(entries);
  t.ok(text.endsWith(' [cut]\nshort\n'), 'a long line is cut, the next one whole');
  t.ok(text.length <= STREAM_LIMITS.node.entryChars + 6);
});

t.test('the writer never throws and never waits: Redis away costs entries, counted', async (t) => {
  const away = createRedis('redis://127.0.0.1:1', 'producer'); // never connected: commands fail at once
  t.teardown(() => away.disconnect());
  const errors: Error[] = [];
  const writer = createLogWriter({
    redis: away,
    prefix,
    maxCallChars: 100,
    ttlSeconds: 60,
    onError: (e) => errors.push(e),
  });
  t.doesNotThrow(() => {
    writer.append('invocation', 'x', 'hello\n');
    writer.append('invocation', 'x', null as unknown as string);
    writer.end('invocation', 'x', 'FAILED');
  });
  await writer.flush();
  t.ok(writer.stats().failedEntries >= 2, 'counted');
  t.ok(errors.length >= 1, 'reported');
});

t.test('output waiting for Redis is bounded: past it, dropped and counted', async (t) => {
  const writer = writerFor({ maxPendingChars: 10_000 });
  for (let i = 0; i < 10; i++) writer.append('invocation', 'burst', 'q'.repeat(3000));
  await writer.flush();
  t.equal(textOf(await replay('invocation', 'burst')).length, 9000);
  t.equal(writer.stats().droppedChars, 21_000);
});

t.test('what is read back from Redis is checked, not trusted', async (t) => {
  const key = logStreamKey(prefix, 'invocation', 'forged');
  await redis.xadd(key, '*', 'type', 'log', 'stream', 'stdout', 'text', 'fine\n', 'ts', '1');
  await redis.xadd(key, '*', 'type', 'log', 'stream', 'stdout'); // no text
  await redis.xadd(key, '*', 'type', 'exec-this', 'text', 'rm -rf /');
  await redis.xadd(key, '*', 'type', 'log', 'stream', '<script>', 'text', 'x'.repeat(100_000), 'ts', 'soon');
  await redis.xadd(key, '*', 'type', 'end', 'status', 'S'.repeat(1000));
  const entries = await replay('invocation', 'forged');
  t.equal(entries.length, 3, 'entries the writer could not have made are skipped');
  t.match(entries[0], { type: 'log', stream: 'stdout', text: 'fine\n', ts: 1 });
  t.match(entries[1], { type: 'log', stream: 'stdout' }, 'an unknown stream name is not passed on');
  t.equal(
    (entries[1] as { text: string }).text.length,
    STREAM_LIMITS.invocation.entryChars,
    'held to an entry',
  );
  t.type(entries[1]?.ts, 'number', 'a bad ts falls back to the entry id');
  t.equal((entries[2] as { status: string }).status.length, 64);
});

t.test('following: what is there, then what comes; aborting closes its connection', async (t) => {
  const writer = writerFor();
  writer.append('invocation', 'live', 'before\n');
  await writer.flush();
  const abort = new AbortController();
  const seen: string[] = [];
  const following = (async () => {
    for await (const batch of reader.entries('invocation', 'live', {
      follow: true,
      blockMs: 50,
      signal: abort.signal,
    }))
      for (const e of batch) if (e.type === 'log') seen.push(e.text);
  })();
  await waitFor(() => seen.length === 1, { what: 'the replay' });
  writer.append('invocation', 'live', 'after\n');
  await waitFor(() => seen.length === 2, { what: 'the new line' });
  t.same(seen, ['before\n', 'after\n']);
  abort.abort();
  await following;
  t.pass('the blocking read ended with the abort (the leak check sees its connection closed)');
});

t.test('a client that reads nothing for stallMs is dropped, its buffer with it', async (t) => {
  const registry = new Registry();
  const app = Fastify();
  await app.register(logRoutes, {
    reader,
    queues: {} as never,
    maxFollowers: 4,
    registry,
    stallMs: 300,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.teardown(() => app.close());
  const writer = writerFor();
  // 16 MiB of node log: far more than the kernel's socket buffers hold.
  const line = `${'n'.repeat(8000)}\n`;
  const node = randomUUID();
  for (let i = 0; i < 2000; i++) writer.append('node', node, line);
  await writer.flush();
  const { port } = app.server.address() as { port: number };
  const client = connect(port, '127.0.0.1');
  t.teardown(() => client.destroy());
  await once(client, 'connect');
  client.pause();
  client.write(`GET /api/v1/nodes/${node}/logs?follow=1 HTTP/1.1\r\nHost: x\r\n\r\n`);
  const value = async (name: string) => (await registry.getSingleMetric(name)?.get())?.values[0]?.value;
  await waitFor(async () => (await value('dockhand_log_streams_stalled_total')) === 1, {
    what: 'the stalled client to be dropped',
  });
  await waitFor(async () => (await value('dockhand_log_streams')) === 0, { what: 'its slot to free' });
  t.equal(await value('dockhand_log_streams_paused'), 0);
});

t.test(
  'the frame channel hands log frames and stray output to the call sink, and keeps no log frame',
  async (t) => {
    const channel = new FrameChannel(new PassThrough(), { rawCap: 1024 });
    const got: Array<[string, string]> = [];
    const frame = (text: string, stream?: string) =>
      `${FRAME_MARK}${JSON.stringify({ type: 'log', text, ...(stream ? { stream } : {}) })}\n`;
    channel.stdout.write(frame('before any call\n'));
    channel.setOutputSink((text, stream) => got.push([stream, text]));
    channel.stdout.write(frame('hello\n'));
    channel.stdout.write(frame('oops\n', 'stderr'));
    channel.stdout.write('a child wrote this\n');
    channel.stderr.write('and this on stderr\n');
    // 64 KiB of log frames: far past the 1 KiB raw cap, and not held, so not counted against it.
    for (let i = 0; i < 64; i++) channel.stdout.write(frame('x'.repeat(1024)));
    channel.setOutputSink(undefined);
    channel.stdout.write(frame('after the call\n'));
    await new Promise((r) => setImmediate(r));
    t.same(got.slice(0, 4), [
      ['stdout', 'hello\n'],
      ['stderr', 'oops\n'],
      ['stdout', 'a child wrote this\n'],
      ['stderr', 'and this on stderr\n'],
    ]);
    t.equal(got.length, 4 + 64, 'nothing before the sink was set or after it was unset');
    t.equal(
      channel.takeRaw(),
      'a child wrote this\nand this on stderr\n',
      'stray output is still the call log',
    );
    t.equal(channel.closed, undefined, 'log frames are not output held against the raw cap');
    t.equal(channel.stats().bufferedBytes, 0);
  },
);
