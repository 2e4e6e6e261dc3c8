// npm run bench:functions — one run, same machine:
//   (a) naive: create + start + wait + remove a container per call (node -e, same image)
//   (b) the bootstrap channel alone on a warm container (framed stdin/stdout round trip)
//   (c) raw BullMQ round trip: add → no-op worker → completed event
//   (d) Dockhand: POST /functions/:name/invoke through the gateway, sequential and at 8/32
//   plus warm hits over calls spread across 3 functions with POOL_MIN_IDLE=2.
// Env: BENCH_SEQ (default 500), BENCH_LOAD (calls per concurrency level, default 2000),
//      BENCH_NAIVE (default 20), BENCH_WARM_CALLS (default 1000).
import { randomBytes } from 'node:crypto';
import { Queue, QueueEvents, Worker } from 'bullmq';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { loadConfig } from '../core/config.ts';
import { startRole } from '../roles/index.ts';
import { DockerSandboxDriver } from '../runtimes/docker-sandbox.ts';
import { wipePrefix } from '../test/helpers/env.ts';

const SEQ = Number(process.env.BENCH_SEQ ?? 500);
const LOAD = Number(process.env.BENCH_LOAD ?? 2000);
const NAIVE = Number(process.env.BENCH_NAIVE ?? 20);
const WARM_CALLS = Number(process.env.BENCH_WARM_CALLS ?? 1000);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const IMAGE = 'dockhand-runtime-node20:local';

interface Figures {
  p50: number;
  p99: number;
  perSecond: number;
}
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
};
const figures = (lat: number[], seconds: number): Figures => ({
  p50: pct(lat, 50),
  p99: pct(lat, 99),
  perSecond: lat.length / seconds,
});

async function timed(n: number, concurrency: number, call: () => Promise<void>): Promise<Figures> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < n) {
        const s = performance.now();
        await call();
        lat.push(performance.now() - s);
      }
    }),
  );
  return figures(lat, (performance.now() - t0) / 1000);
}

async function naive(docker: Docker): Promise<Figures> {
  return timed(NAIVE, 1, async () => {
    const c = await docker.createContainer({
      Image: IMAGE,
      Cmd: ['/usr/bin/node', '-e', 'process.stdout.write(JSON.stringify({ok:true}))'],
      HostConfig: { NetworkMode: 'none', LogConfig: { Type: 'none', Config: {} } },
      Labels: { 'dockhand.bench': '1' },
    });
    await c.start();
    await c.wait();
    await c.remove({ force: true });
  });
}

async function channel(docker: Docker): Promise<Figures> {
  const driver = new DockerSandboxDriver(docker, `bench/${process.pid}`);
  const sandbox = await driver.create({
    image: IMAGE,
    cmd: ['/usr/bin/node', '/opt/dockhand/bootstrap.mjs'],
    memoryMb: 512,
  });
  await sandbox.channel.waitFor('ready');
  await sandbox.channel.request({
    type: 'load',
    files: { 'index.js': Buffer.from('exports.handler = async () => ({ ok: true });').toString('base64') },
    handler: 'index.handler',
  });
  for (let i = 0; i < 200; i++) await sandbox.channel.request({ type: 'invoke', event: {}, context: {} });
  const f = await timed(SEQ * 2, 1, async () => {
    await sandbox.channel.request({ type: 'invoke', event: {}, context: {} });
  });
  await sandbox.destroy();
  return f;
}

async function bullmq(): Promise<Figures> {
  const prefix = `bench-rt-${randomBytes(4).toString('hex')}`;
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue('rt', { connection, prefix });
  const events = new QueueEvents('rt', { connection: { url: REDIS_URL }, prefix });
  const worker = new Worker('rt', async () => ({ ok: true }), { connection, prefix });
  await events.waitUntilReady();
  const waiters = new Map<string, () => void>();
  events.on('completed', ({ jobId }) => waiters.get(jobId)?.());
  let i = 0;
  const call = async () => {
    const id = `j${i++}`;
    const done = new Promise<void>((r) => waiters.set(id, r));
    await queue.add('rt', {}, { jobId: id, removeOnComplete: true });
    await done;
    waiters.delete(id);
  };
  for (let w = 0; w < 100; w++) await call();
  const f = await timed(SEQ, 1, call);
  await worker.close();
  await events.close();
  await queue.obliterate({ force: true });
  await queue.close();
  connection.disconnect();
  return f;
}

async function dockhand() {
  const prefix = `bench-fn-${randomBytes(4).toString('hex')}`;
  const config = loadConfig({
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    PORT: '0',
    LOG_LEVEL: 'silent',
    RATE_LIMIT_PER_MINUTE: '0',
    POOL_MIN_IDLE: '2',
    POOL_MAX: '48',
    FUNCTIONS_CONCURRENCY: '64',
  });
  const running = await startRole('all', config, { listen: true });
  const client = new Pool(running.url as string, { connections: 64, pipelining: 1 });
  const request = async (method: 'PUT' | 'POST', path: string, body: unknown) => {
    const res = await client.request({
      method,
      path,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = (await res.body.json()) as Record<string, unknown>;
    if (res.statusCode >= 300) throw new Error(`${path}: ${res.statusCode} ${JSON.stringify(json)}`);
    return json;
  };
  const deploy = (name: string, concurrency: number) =>
    request('PUT', `/functions/${name}`, {
      runtime: 'node20',
      handler: 'index.handler',
      memoryMb: 128,
      timeoutMs: 5000,
      concurrency,
      code: { files: { 'index.js': 'exports.handler = async () => ({ ok: true });' } },
    });
  const invoke = async (name: string) => {
    const out = await request('POST', `/functions/${name}/invoke`, {});
    if (out.status !== 'SUCCESS') throw new Error(JSON.stringify(out));
    return out;
  };

  // Warm hits first, on a fresh pool: 3 functions, calls spread at random, one at a time.
  for (const n of ['f1', 'f2', 'f3']) await deploy(n, 8);
  let warm = 0;
  let specialised = 0;
  for (let i = 0; i < WARM_CALLS; i++) {
    const out = await invoke(`f${1 + Math.floor(Math.random() * 3)}`);
    if (!out.coldStart) warm++;
  }
  const metrics = await (await client.request({ method: 'GET', path: '/metrics' })).body.text();
  specialised = Number(
    /dockhand_warm_starts_total\{runtime="node20",kind="specialised"\} (\d+)/.exec(metrics)?.[1] ?? 0,
  );

  await deploy('noop', 64);
  for (let i = 0; i < 64; i++) await invoke('noop'); // first call specialises a container
  // Containers for the concurrent runs are made (cold) here, outside the timing.
  await timed(256, 32, async () => {
    await invoke('noop');
  });
  const seq = await timed(SEQ, 1, async () => {
    await invoke('noop');
  });
  const c8 = await timed(LOAD, 8, async () => {
    await invoke('noop');
  });
  const c32 = await timed(LOAD, 32, async () => {
    await invoke('noop');
  });
  await client.close();
  await running.close();
  await wipePrefix(prefix);
  return { seq, c8, c32, warm, specialised };
}

const docker = new Docker();
const a = await naive(docker);
const b = await channel(docker);
const c = await bullmq();
const d = await dockhand();
const row = (name: string, f: Figures) =>
  `| ${name} | ${f.p50.toFixed(2)} | ${f.p99.toFixed(2)} | ${f.perSecond.toFixed(0)} |`;
console.log('\n| path | p50 ms | p99 ms | per second |\n|---|---|---|---|');
console.log(row(`(a) naive: container per call (${NAIVE} calls)`, a));
console.log(row(`(b) bootstrap channel, warm container (${SEQ * 2} calls)`, b));
console.log(row(`(c) raw BullMQ round trip (${SEQ} jobs)`, c));
console.log(row(`(d) Dockhand invoke via gateway, sequential (${SEQ})`, d.seq));
console.log(row(`(d) Dockhand invoke, concurrency 8 (${LOAD})`, d.c8));
console.log(row(`(d) Dockhand invoke, concurrency 32 (${LOAD})`, d.c32));
const bound = 2 * (b.p50 + c.p50);
console.log(
  `\n(d) p50 ${d.seq.p50.toFixed(2)} ms vs 2 × ((b) + (c)) = ${bound.toFixed(2)} ms — ${d.seq.p50 <= bound ? 'met' : 'NOT met'}`,
);
console.log(
  `(a) / (d) at p50: ${(a.p50 / d.seq.p50).toFixed(0)}× (goal ≥ 100×) — ${a.p50 / d.seq.p50 >= 100 ? 'met' : 'NOT met'}`,
);
console.log(
  `warm hits: ${d.warm}/${WARM_CALLS} = ${((d.warm / WARM_CALLS) * 100).toFixed(1)}% (goal ≥ 99%; ${d.specialised} of them specialised a generic container)`,
);
console.log(
  `no-op at concurrency 32: ${d.c32.perSecond.toFixed(0)} invocations/s (goal ≥ 500) — ${d.c32.perSecond >= 500 ? 'met' : 'NOT met'}`,
);
process.exit(0);
