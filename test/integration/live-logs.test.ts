import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { hostname } from 'node:os';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import t from 'tap';
import { createLogWriter, logStreamKey } from '../../queues/log-stream.ts';
import { createNodeLogDestination } from '../../queues/node-log-destination.ts';
import { startRole } from '../../roles/index.ts';
import { runtimeCatalog } from '../../runtimes/catalog.ts';
import type { CgroupProfiler } from '../../runtimes/cgroup-profiler.ts';
import { DockerSandboxDriver } from '../../runtimes/docker-sandbox.ts';
import { createInvoker } from '../../runtimes/invoker.ts';
import type { FunctionImage, WarmPool } from '../../runtimes/warm-pool.ts';
import { REDIS_URL, testConfig } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { openSse } from '../helpers/sse-client.ts';
import { waitFor } from '../helpers/wait-for.ts';

leakCheck(t);

const KEY = 'key-one';
const auth = { authorization: `Bearer ${KEY}` };
const docker = new Docker();
const config = testConfig(t, {
  PORT: '0',
  API_KEYS: KEY,
  POOL_MIN_IDLE: '1',
  POOL_MAX: '8',
  // The slow-reader test prints 16 MiB: more than the kernel's socket buffers can hide.
  LIVE_LOGS_MAX_CHARS: String(32 * 1024 * 1024),
  LIVE_LOGS_MAX_FOLLOWERS: '3',
});
const running = await startRole('all', config, { listen: true });
t.teardown(() => running.close());
const { app } = running;
const base = running.url as string;
const redis = new Redis(REDIS_URL);
t.teardown(() => redis.quit());

// The gateway's own end of every connection, to look at what it holds for a client.
const serverSockets: Socket[] = [];
app.server.on('connection', (socket: Socket) => serverSockets.push(socket));

async function deploy(name: string, runtime: 'node20' | 'python3', files: Record<string, string>) {
  const res = await app.inject({
    method: 'PUT',
    url: `/functions/${name}`,
    headers: auth,
    payload: {
      runtime,
      handler: runtime === 'node20' ? 'index.handler' : 'app.handler',
      memoryMb: 128,
      timeoutMs: 120_000,
      code: { files },
    },
  });
  if (res.statusCode >= 300) throw new Error(`deploy ${name}: ${res.statusCode} ${res.body}`);
}

/** Queues a call (X-Invocation-Type: Event) and answers its request id. */
async function invokeAsync(name: string, event: object = {}): Promise<string> {
  const res = await app.inject({
    method: 'POST',
    url: `/functions/${name}/invoke`,
    headers: { ...auth, 'x-invocation-type': 'Event' },
    payload: event,
  });
  if (res.statusCode !== 202) throw new Error(`invoke ${name}: ${res.statusCode} ${res.body}`);
  return res.json().requestId;
}

const invocation = (id: string) =>
  app.inject({ method: 'GET', url: `/invocations/${id}`, headers: auth }).then((r) => ({
    status: r.statusCode,
    body: r.json(),
  }));

/** A node registered with this gateway (as an agent would), so that its log route answers. */
async function registerNode(name: string): Promise<string> {
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/nodes/register',
    headers: auth,
    payload: {
      name,
      ip: '10.0.0.7',
      capabilities: { os: 'linux', cpu_count: 2, mem_mb: 2048, disk_mb: 10240 },
    },
  });
  if (res.statusCode !== 200) throw new Error(`register ${name}: ${res.statusCode} ${res.body}`);
  return res.json().node_id;
}
const [n1, n2, n3, n4, n7, n9] = await Promise.all(
  ['n1', 'n2', 'n3', 'n4', 'n7', 'n9'].map((name) => registerNode(`live-logs-${name}`)),
);

const metric = async (name: string) => {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
};

/**
 * Lets a waiting handler go on: it polls for `/tmp/<flag>` in its container, which only the
 * test can make (docker exec in each of this process's containers; the runtimes' own
 * interpreters write the file). No clock decides when the handler continues.
 */
async function release(flag: string) {
  const ours = await docker.listContainers({
    filters: { label: [`dockhand.owner=${hostname()}/${process.pid}`], status: ['running'] },
  });
  await Promise.all(
    ours.map(async (c) => {
      const cmd = c.Image.includes('python')
        ? ['/usr/bin/python3', '-c', `open('/tmp/${flag}', 'w').close()`]
        : ['/usr/bin/node', '-e', `require('fs').writeFileSync('/tmp/${flag}', '')`];
      const exec = await docker.getContainer(c.Id).exec({ Cmd: cmd, User: '65534:65534' });
      const stream = await exec.start({ hijack: true, stdin: false });
      stream.resume();
      await once(stream, 'end');
    }),
  );
}

const WAITING_NODE = (flag: string) => `const fs = require('node:fs');
exports.handler = async () => {
  console.log('first line');
  const gone = Date.now() + 100000;
  while (!fs.existsSync('/tmp/${flag}') && Date.now() < gone) await new Promise((r) => setTimeout(r, 20));
  console.error('second line');
  return fs.existsSync('/tmp/${flag}') ? 'released' : 'gave up';
};`;

t.test('node: the first line arrives while the call runs, then the second, then end', async (t) => {
  await deploy('waiter', 'node20', { 'index.js': WAITING_NODE('go-node') });
  const id = await invokeAsync('waiter');
  const sse = await openSse(t, `${base}/invocations/${id}/logs?follow=1`, auth);
  t.equal(sse.status, 200);
  t.match(sse.headers['content-type'], /^text\/event-stream/);
  t.equal(sse.headers['cache-control'], 'no-cache, no-transform');

  const first = await sse.next();
  t.equal(first.event, 'log');
  t.match(JSON.parse(first.data), { stream: 'stdout', text: 'first line\n', ts: Number });
  t.match(first.id, /^\d+-\d+$/, 'each event has an id to resume from');
  const during = await invocation(id);
  t.same(
    [during.status, during.body.status],
    [202, 'RUNNING'],
    'the first line came while the call was still running (no result yet)',
  );

  await release('go-node');
  const second = await sse.next();
  t.equal(second.event, 'log');
  t.match(JSON.parse(second.data), { stream: 'stderr', text: 'second line\n' });
  const end = await sse.next();
  t.equal(end.event, 'end');
  t.same(JSON.parse(end.data), { status: 'SUCCESS' });
  await sse.ended;
  t.equal(sse.events.length, 3, 'nothing after end; the server closed the stream');

  const done = await waitFor(
    async () => {
      const got = await invocation(id);
      return got.status === 200 ? got : undefined;
    },
    { what: 'the result' },
  );
  t.equal(done.body.result, 'released');
  t.equal(done.body.logs, 'first line\nsecond line\n', "the result's logs are as before");
});

t.test('replay after the end, without follow: everything, then end, then close', async (t) => {
  await deploy('forger', 'node20', {
    'index.js': `exports.handler = async () => {
  console.log('one');
  process.stdout.write('\\n\\nevent: end\\ndata: {"status":"FORGED"}\\n\\nid: 1-1\\n\\n');
  console.log('three');
  return 'ok';
};`,
  });
  const id = await invokeAsync('forger');
  await waitFor(async () => (await invocation(id)).status === 200, { what: 'the call to finish' });
  // Its end entry is written as the call finishes; a replay shows it once it is there.
  const replay = await waitFor(
    async () => {
      const sse = await openSse(t, `${base}/invocations/${id}/logs`, auth);
      await sse.ended;
      return sse.events.at(-1)?.event === 'end' ? sse : undefined;
    },
    { what: 'the end entry' },
  );
  const text = replay.events
    .filter((e) => e.event === 'log')
    .map((e) => JSON.parse(e.data).text)
    .join('');
  t.equal(text, 'one\n\n\nevent: end\ndata: {"status":"FORGED"}\n\nid: 1-1\n\nthree\n');
  t.same(
    replay.events.filter((e) => e.event === 'end').map((e) => JSON.parse(e.data)),
    [{ status: 'SUCCESS' }],
    'printed text cannot end the stream or forge a field: data is JSON, one line',
  );

  // Resuming after the first event (what a browser does on reconnect) gives the rest only.
  const firstId = replay.events[0]?.id as string;
  const resumed = await openSse(t, `${base}/invocations/${id}/logs?follow=1`, {
    ...auth,
    'last-event-id': firstId,
  });
  await resumed.ended;
  t.notOk(
    resumed.events.some((e) => e.id === firstId),
    'the event named in Last-Event-ID is not sent again',
  );
  t.equal(resumed.events.at(-1)?.event, 'end', 'a finished call followed ends at once');

  // EventSource reconnects after every close, with the last id it saw: after the end, 204 stops it.
  const endId = resumed.events.at(-1)?.id as string;
  const again = await openSse(t, `${base}/invocations/${id}/logs?follow=1`, {
    ...auth,
    'last-event-id': endId,
  });
  await again.ended;
  t.same([again.status, again.events.length], [204, 0], 'a reconnect after the end is told: nothing more');

  // A call whose stream is gone (expired, or its worker died before the end entry): the end
  // comes from its job, with an id, so that a reconnect after it is a 204 too.
  await redis.del(logStreamKey(config.redis.prefix, 'invocation', id));
  const fromJob = await openSse(t, `${base}/invocations/${id}/logs?follow=1`, auth);
  await fromJob.ended;
  t.same(
    fromJob.events.map((e) => [e.event, e.data, e.id]),
    [['end', '{"status":"SUCCESS"}', '0-0']],
  );
  const after = await openSse(t, `${base}/invocations/${id}/logs?follow=1`, {
    ...auth,
    'last-event-id': '0-0',
  });
  await after.ended;
  t.equal(after.status, 204);
});

t.test('python: lines stream as they are printed too', async (t) => {
  await deploy('pywaiter', 'python3', {
    'app.py': `import os, sys, time

def handler(event, context):
    print("py first")
    gone = time.time() + 100
    while not os.path.exists("/tmp/go-py") and time.time() < gone:
        time.sleep(0.02)
    print("py second", file=sys.stderr)
    return "released" if os.path.exists("/tmp/go-py") else "gave up"
`,
  });
  const id = await invokeAsync('pywaiter');
  const sse = await openSse(t, `${base}/invocations/${id}/logs?follow=1`, auth);
  const first = await sse.next();
  t.match(JSON.parse(first.data), { stream: 'stdout', text: 'py first\n' });
  t.equal((await invocation(id)).status, 202, 'while the call runs');
  await release('go-py');
  t.match(JSON.parse((await sse.next()).data), { stream: 'stderr', text: 'py second\n' });
  t.same(JSON.parse((await sse.next()).data), { status: 'SUCCESS' });
  await sse.ended;
});

t.test('unknown ids are 404, bad ids 400, errors JSON', async (t) => {
  for (const url of [
    '/invocations/no-such-call/logs',
    '/exec/no-such-exec/logs?follow=1',
    '/api/v1/nodes/00000000-0000-4000-8000-000000000000/logs?follow=1',
  ]) {
    const res = await app.inject({ method: 'GET', url, headers: auth });
    t.equal(res.statusCode, 404, url);
    t.equal(res.json().error, 'not_found');
    t.match(res.headers['content-type'], /application\/json/);
  }
  for (const url of [
    '/invocations/meta/logs',
    '/api/v1/nodes/..%2Fx/logs',
    '/invocations/abc/logs?follow=2',
  ]) {
    const res = await app.inject({ method: 'GET', url, headers: auth });
    t.equal(res.statusCode, 400, url);
  }
  const badResume = await app.inject({
    method: 'GET',
    url: `/api/v1/nodes/${n1}/logs`,
    headers: { ...auth, 'last-event-id': 'x\r\nevil' },
  });
  t.equal(badResume.statusCode, 400, 'Last-Event-ID must be a stream id');
  const head = await app.inject({ method: 'HEAD', url: `/api/v1/nodes/${n1}/logs?follow=1`, headers: auth });
  t.equal(head.statusCode, 404, 'no HEAD: it would follow with nowhere to write, holding a slot');
});

t.test('every log route needs a key when API_KEYS is set; SSE is no way around it', async (t) => {
  const id = await invokeAsync('forger');
  for (const path of [`/invocations/${id}/logs`, '/exec/any-id/logs', `/api/v1/nodes/${n1}/logs`]) {
    for (const query of ['', '?follow=1']) {
      for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: 'Basic Og==' }] as Array<
        Record<string, string>
      >) {
        const sse = await openSse(t, `${base}${path}${query}`, headers);
        await sse.ended;
        t.equal(sse.status, 401, `${path}${query} ${JSON.stringify(headers)}`);
        t.equal(JSON.parse(sse.body()).error, 'unauthorized');
        t.equal(sse.events.length, 0, 'not one event');
      }
    }
  }
});

t.test(
  'a client that does not read: the gateway stops reading Redis and holds one event at most',
  async (t) => {
    await deploy('flood', 'node20', {
      'index.js': `exports.handler = async () => {
  const line = 'x'.repeat(16383);
  for (let i = 0; i < 1024; i++) console.log(line);
  return 'flooded';
};`,
    });
    const id = await invokeAsync('flood');
    const client = connect(Number(new URL(base).port), '127.0.0.1');
    t.teardown(() => client.destroy());
    await once(client, 'connect');
    // Never read: the kernel's buffers fill, then the gateway's socket reports backpressure.
    client.pause();
    client.write(
      `GET /invocations/${id}/logs?follow=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\n\r\n`,
    );
    await waitFor(async () => (await metric('dockhand_log_streams_paused')) === 1, {
      what: 'the stream to wait for its client',
      timeoutMs: 60_000,
    });
    await waitFor(async () => (await invocation(id)).status === 200, { what: 'the flood to finish' });
    const key = logStreamKey(config.redis.prefix, 'invocation', id);
    // What the worker put in Redis for this call, to compare with what reached the socket.
    let produced = 0;
    for (const [, fields] of await redis.xrange(key, '-', '+')) {
      const text = fields[fields.indexOf('text') + 1];
      if (fields.includes('log') && text) produced += text.length;
    }
    const server = serverSockets.find((s) => s.remotePort === client.localPort);
    if (!server) throw new Error('no server socket for the slow client');
    t.ok(produced > 8 * 1024 * 1024, `the call logged ${produced} characters`);
    t.ok(
      server.writableLength <= 256 * 1024,
      `the gateway holds ${server.writableLength} bytes for the client: at most one event past the high-water mark`,
    );
    t.ok(
      server.bytesWritten < produced / 2,
      `${server.bytesWritten} bytes went to the socket out of ${produced}: the rest stayed in Redis`,
    );
    t.equal(await metric('dockhand_log_streams_paused'), 1, 'still waiting, not reading ahead');

    client.destroy();
    await waitFor(async () => (await metric('dockhand_log_streams')) === 0, {
      what: 'the stream to close when its client goes',
    });
    t.equal(await metric('dockhand_log_streams_paused'), 0);
  },
);

t.test('followers are bounded per process: one too many is a 503 with Retry-After', async (t) => {
  const open = await Promise.all(
    [n1, n2, n3].map((n) => openSse(t, `${base}/api/v1/nodes/${n}/logs?follow=1`, auth)),
  );
  t.same(
    open.map((s) => s.status),
    [200, 200, 200],
  );
  const refused = await openSse(t, `${base}/api/v1/nodes/${n4}/logs?follow=1`, auth);
  await refused.ended;
  t.equal(refused.status, 503);
  t.equal(refused.headers['retry-after'], '5');
  t.same(JSON.parse(refused.body()), {
    error: 'too_many_log_streams',
    message: 'This gateway already serves 3 live log streams (LIVE_LOGS_MAX_FOLLOWERS); retry shortly.',
  });
  t.equal(await metric('dockhand_log_streams_refused_total'), 1);

  open[0]?.close();
  await waitFor(async () => (await metric('dockhand_log_streams')) === 2, { what: 'a slot to free' });
  const again = await openSse(t, `${base}/api/v1/nodes/${n4}/logs`, auth);
  await again.ended;
  t.equal(again.status, 200, 'a freed slot serves the next one');
  for (const s of open) s.close();
  await waitFor(async () => (await metric('dockhand_log_streams')) === 0, { what: 'all to close' });
});

t.test('a node log destination ships pino lines only once it has a node id', async (t) => {
  const writer = createLogWriter({
    redis,
    prefix: config.redis.prefix,
    maxCallChars: 1024 * 1024,
    ttlSeconds: 3600,
  });
  let nodeId: string | undefined;
  const logger = pino(
    { base: undefined },
    pino.multistream([{ stream: createNodeLogDestination(writer, () => nodeId) }]),
  );
  logger.info('before registration');
  await writer.flush();
  t.same(await redis.keys(`${config.redis.prefix}:logs:node:*`), [], 'no id, nothing kept');

  const sse = await openSse(t, `${base}/api/v1/nodes/${n7}/logs?follow=1`, auth);
  nodeId = n7;
  logger.info({ job: 42 }, 'registered');
  const line = JSON.parse(JSON.parse((await sse.next()).data).text);
  t.match(line, { msg: 'registered', job: 42, level: 30 });
  nodeId = '../escape';
  logger.info('an id that is not one');
  logger.info('(the getter may return anything)');
  nodeId = n7;
  logger.warn('back');
  t.match(JSON.parse(JSON.parse((await sse.next()).data).text), { msg: 'back', level: 40 });
  sse.close();
  await waitFor(async () => (await metric('dockhand_log_streams')) === 0, { what: 'the stream to close' });
  t.same(await redis.keys(`${config.redis.prefix}:logs:node:*`), [
    logStreamKey(config.redis.prefix, 'node', n7 as string),
  ]);
});

t.test('the bootstraps stop streaming one character past the budget; the writer says it cut', async (t) => {
  const catalog = runtimeCatalog(config.functions.images);
  const driver = new DockerSandboxDriver(docker, `${hostname()}/${process.pid}`);
  const sources = {
    node20: {
      handler: 'index.handler',
      file: 'index.js',
      source:
        'exports.handler = async () => { for (let i = 0; i < 40000; i++) { console.log("o" + i); console.error("e" + i); } return 1; };',
    },
    python3: {
      handler: 'app.handler',
      file: 'app.py',
      source:
        'import sys\n\ndef handler(e, c):\n    for i in range(40000):\n        print("o%d" % i)\n        print("e%d" % i, file=sys.stderr)\n    return 1\n',
    },
  } as const;
  for (const runtime of ['node20', 'python3'] as const) {
    const { handler, file, source } = sources[runtime];
    const sandbox = await driver.create({
      image: catalog[runtime].image,
      cmd: catalog[runtime].cmd,
      memoryMb: 128,
    });
    t.teardown(() => sandbox.destroy());
    await sandbox.channel.waitFor('ready');
    const loaded = await sandbox.channel.request({
      type: 'load',
      handler,
      env: {},
      files: { [file]: Buffer.from(source).toString('base64') },
    });
    t.equal(loaded.ok, true, `${runtime} loaded`);
    const pool = {
      acquire: async () => ({ sandbox, coldStart: false }),
      release: () => {},
    } as unknown as WarmPool;
    const profiler = { resetPeak: async () => true, sample: async () => null } as unknown as CgroupProfiler;
    const invoke = createInvoker({ pool, profiler, liveLogChars: 5000 });
    const writer = createLogWriter({
      redis,
      prefix: config.redis.prefix,
      maxCallChars: 5000,
      ttlSeconds: 600,
    });
    const pieces: Array<[string, string]> = [];
    const id = `budget-${runtime}`;
    const fn = { name: 'f', runtime, handler, memoryMb: 128 } as FunctionImage;
    const out = await invoke(fn, {
      requestId: id,
      event: {},
      timeoutMs: 60_000,
      onOutput: (text, stream) => {
        pieces.push([stream, text]);
        writer.append('invocation', id, text, stream);
      },
    });
    writer.end('invocation', id, out.status);
    await writer.flush();
    t.equal(out.status, 'SUCCESS');
    const streamed = pieces.map(([, text]) => text).join('');
    t.equal(streamed.length, 5001, `${runtime}: the budget and one character more crossed the pipe, no more`);
    t.equal(out.logs.length, 262144, 'the result keeps its own 256 Ki');
    t.ok(out.logs.startsWith(streamed), 'what streamed is what the result logs begin with');
    t.ok(
      pieces.every(([stream, text]) =>
        text
          .split('\n')
          .filter(Boolean)
          .every((line) => (line[0] === 'o') === (stream === 'stdout')),
      ),
      'every piece is labelled with the stream it was written to',
    );
    const stored = await redis.xrange(logStreamKey(config.redis.prefix, 'invocation', id), '-', '+');
    const text = stored.map(([, f]) => (f[1] === 'log' ? f[f.indexOf('text') + 1] : '')).join('');
    t.match(text, /\[dockhand\] live log limit of 5000 characters reached/);
    t.equal(text.indexOf('[dockhand]'), 5001, 'the notice follows the first 5,000 characters');
  }
});

t.test('a follower open at shutdown does not keep the gateway from closing', async (t) => {
  const sse = await openSse(t, `${base}/api/v1/nodes/${n9}/logs?follow=1`, auth);
  t.equal(sse.status, 200);
  await running.close();
  await sse.ended;
  t.pass('closed');
});
