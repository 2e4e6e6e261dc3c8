// npm run bench:jobs — raw BullMQ versus Dockhand end to end, same machine, same run.
//
// Both sides fetch the same loopback HTTP server (a child process, so it does not share our
// event loop) with the same worker concurrency, and both are timed the same way: from the
// moment a job is handed in (queue.add / POST /jobs) to its `completed` event.
//   raw:      queue.add → Worker(processor = undici request) → completed
//   dockhand: POST /jobs (HTTP, auth-free, schema-checked) → enqueue → Worker(safe fetch with
//             SSRF guard, 1 MiB cap, progress) → completed
// Env: BENCH_JOBS (default 3000), BENCH_CONCURRENCY (worker concurrency, default 10),
//      BENCH_IN_FLIGHT (client-side outstanding submissions, default 50),
//      BENCH_SEQUENTIAL (jobs of the one-at-a-time latency run, default 300).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { Pool, request } from 'undici';
import { loadConfig } from '../core/config.ts';
import { startRole } from '../roles/index.ts';
import { wipePrefix } from '../test/helpers/env.ts';

const JOBS = Number(process.env.BENCH_JOBS ?? 3000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 10);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 50);
const SEQUENTIAL = Number(process.env.BENCH_SEQUENTIAL ?? 300);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

interface Figures {
  jobsPerSecond: number;
  p50: number;
  p99: number;
}

async function startTarget(): Promise<{ url: string; stop(): void }> {
  const code = `require('http').createServer((q,s)=>s.end('ok')).listen(0,'127.0.0.1',function(){console.log(this.address().port)})`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [chunk] = (await once(child.stdout, 'data')) as [Buffer];
  return { url: `http://127.0.0.1:${chunk.toString().trim()}/`, stop: () => child.kill() };
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

/**
 * Submits `jobs` jobs from `inFlight` client loops and times each from hand-in to its
 * `completed` event. Open loop: a client hands in its next job as soon as the last is
 * accepted (throughput, queueing included). Closed loop: it waits for the job to finish
 * first (latency with no backlog).
 */
async function measure(
  events: QueueEvents,
  submit: () => Promise<string>,
  jobs: number,
  inFlight: number,
  closedLoop = false,
): Promise<Figures> {
  const done = new Map<string, number>();
  const waiters = new Map<string, () => void>();
  events.on('completed', ({ jobId }) => {
    done.set(jobId, performance.now());
    waiters.get(jobId)?.();
  });
  const finished = (id: string) =>
    new Promise<number>((resolve) => {
      const at = done.get(id);
      if (at !== undefined) return resolve(at);
      waiters.set(id, () => resolve(done.get(id) as number));
    });
  const latencies: Promise<number>[] = [];
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next++ < jobs) {
        const before = performance.now();
        const id = await submit();
        const latency = finished(id).then((at) => at - before);
        latencies.push(latency);
        if (closedLoop) await latency;
      }
    }),
  );
  const sorted = (await Promise.all(latencies)).sort((a, b) => a - b);
  const elapsed = (performance.now() - t0) / 1000;
  events.removeAllListeners('completed');
  return { jobsPerSecond: jobs / elapsed, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
}

async function raw(targetUrl: string): Promise<[Figures, Figures]> {
  const prefix = `bench-raw-${randomBytes(4).toString('hex')}`;
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue('http-jobs', { connection, prefix });
  const events = new QueueEvents('http-jobs', { connection: { url: REDIS_URL }, prefix });
  const worker = new Worker(
    'http-jobs',
    async (job) => {
      const res = await request(job.data.url);
      return { statusCode: res.statusCode, body: await res.body.text() };
    },
    { connection, prefix, concurrency: CONCURRENCY },
  );
  await events.waitUntilReady();
  let n = 0;
  const submit = async () => {
    const job = await queue.add(
      'http-jobs',
      { url: targetUrl },
      { jobId: `j${n++}`, removeOnComplete: { count: 10_000 } },
    );
    return String(job.id);
  };
  const figures: [Figures, Figures] = [
    await measure(events, submit, JOBS, IN_FLIGHT),
    await measure(events, submit, SEQUENTIAL, 1, true),
  ];
  await worker.close();
  await events.close();
  await queue.close();
  connection.disconnect();
  await wipePrefix(prefix);
  return figures;
}

async function dockhand(targetUrl: string): Promise<[Figures, Figures]> {
  const prefix = `bench-dh-${randomBytes(4).toString('hex')}`;
  const config = loadConfig({
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    PORT: '0',
    LOG_LEVEL: 'silent',
    RATE_LIMIT_PER_MINUTE: '0',
    HTTP_JOBS_ALLOWLIST: '127.0.0.1',
    HTTP_JOBS_CONCURRENCY: String(CONCURRENCY),
  });
  const running = await startRole('all', config, { listen: true });
  const client = new Pool(running.url as string, { connections: IN_FLIGHT });
  const events = new QueueEvents('http-jobs', { connection: { url: REDIS_URL }, prefix });
  await events.waitUntilReady();
  const body = JSON.stringify({ url: targetUrl });
  const submit = async () => {
    const res = await client.request({
      method: 'POST',
      path: '/jobs',
      headers: { 'content-type': 'application/json' },
      body,
    });
    if (res.statusCode !== 202)
      throw new Error(`POST /jobs answered ${res.statusCode}: ${await res.body.text()}`);
    return ((await res.body.json()) as { id: string }).id;
  };
  const figures: [Figures, Figures] = [
    await measure(events, submit, JOBS, IN_FLIGHT),
    await measure(events, submit, SEQUENTIAL, 1, true),
  ];
  await events.close();
  await client.close();
  await running.close();
  await wipePrefix(prefix);
  return figures;
}

const target = await startTarget();
try {
  const [rawLoad, rawSeq] = await raw(target.url);
  const [dhLoad, dhSeq] = await dockhand(target.url);
  const row = (name: string, f: Figures) =>
    `| ${name} | ${f.jobsPerSecond.toFixed(0)} | ${f.p50.toFixed(2)} | ${f.p99.toFixed(2)} |`;
  console.log(`\nLoad: ${JOBS} jobs, worker concurrency ${CONCURRENCY}, ${IN_FLIGHT} submissions in flight`);
  console.log('| side | jobs/s | p50 ms | p99 ms |\n|---|---|---|---|');
  console.log(row('raw BullMQ (add → worker fetch)', rawLoad));
  console.log(row('Dockhand (POST /jobs → succeeded)', dhLoad));
  console.log(`\nSequential: ${SEQUENTIAL} jobs, one at a time (latency without a backlog)`);
  console.log('| side | jobs/s | p50 ms | p99 ms |\n|---|---|---|---|');
  console.log(row('raw BullMQ', rawSeq));
  console.log(row('Dockhand', dhSeq));
  const ratio = dhLoad.jobsPerSecond / rawLoad.jobsPerSecond;
  console.log(
    `\nDockhand / raw throughput under load: ${(ratio * 100).toFixed(0)}% (goal ≥ 50%) — ${ratio >= 0.5 ? 'met' : 'NOT met'}`,
  );
} finally {
  target.stop();
}
process.exit(0);
