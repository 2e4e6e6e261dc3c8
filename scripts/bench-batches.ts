// npm run bench:batches — batch scoring, one run, same machine:
//   engine:   scoreBatch() on in-memory inputs (16 metrics each) → metric scorings/s
//   raw:      BullMQ add + a worker that reads the 16 files and writes result.json unscored
//             (the queue + file I/O floor any runner pays)
//   dockhand: BATCHES generated folders → one tick enqueues them → batches worker (lock, read,
//             score, atomic result.json, processed.json, unlock) → completed
// Env: BENCH_BATCHES (default 1000), BENCH_ENGINE_BATCHES (default 2000), BATCHES_CONCURRENCY
// (worker concurrency on both sides, default 16 as in Dockhand's config).
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { loadConfig } from '../core/config.ts';
import { METRIC_BY_FILE } from '../processors/batches/catalog.ts';
import { type MetricInput, scoreBatch } from '../processors/batches/engine.ts';
import { writeFileAtomic } from '../processors/batches/folder.ts';
import { startRole } from '../roles/index.ts';
import { sampleBatch } from '../test/helpers/batch-samples.ts';

const BATCHES = Number(process.env.BENCH_BATCHES ?? 1000);
const ENGINE_BATCHES = Number(process.env.BENCH_ENGINE_BATCHES ?? 2000);
const CONCURRENCY = Number(process.env.BATCHES_CONCURRENCY ?? 16);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
};

function generate(root: string, n: number) {
  for (let i = 0; i < n; i++) {
    const dir = path.join(root, 'Inputs', `b${String(i).padStart(5, '0')}`);
    mkdirSync(dir, { recursive: true });
    for (const [file, content] of Object.entries(sampleBatch((i % 10) / 10))) {
      writeFileSync(path.join(dir, file), JSON.stringify(content));
    }
  }
}

function engineAlone() {
  const inputs = Array.from({ length: 10 }, (_, k) =>
    Object.fromEntries(
      Object.entries(sampleBatch(k / 10)).map(([file, value]) => [
        METRIC_BY_FILE[file] as string,
        { ok: true, value } as MetricInput,
      ]),
    ),
  );
  for (let i = 0; i < 200; i++) scoreBatch(inputs[i % 10] as Record<string, MetricInput>); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < ENGINE_BATCHES; i++) scoreBatch(inputs[i % 10] as Record<string, MetricInput>);
  const seconds = (performance.now() - t0) / 1000;
  return { scoringsPerSecond: (ENGINE_BATCHES * 16) / seconds, batchesPerSecond: ENGINE_BATCHES / seconds };
}

async function drain(events: QueueEvents, n: number) {
  let seen = 0;
  await new Promise<void>((resolve, reject) => {
    events.on('completed', () => {
      if (++seen >= n) resolve();
    });
    events.on('failed', ({ failedReason }) => reject(new Error(failedReason)));
  });
  events.removeAllListeners();
}

async function durations(queue: Queue) {
  const jobs = await queue.getJobs(['completed'], 0, -1);
  return jobs.map((j) => (j.finishedOn ?? 0) - (j.processedOn ?? 0));
}

async function raw(root: string) {
  const prefix = `bench-braw-${randomBytes(4).toString('hex')}`;
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue('batches', { connection, prefix });
  const events = new QueueEvents('batches', { connection: { url: REDIS_URL }, prefix });
  await events.waitUntilReady();
  const worker = new Worker(
    'batches',
    async (job) => {
      const dir = path.join(root, 'Inputs', job.data.name);
      const files = await fs.readdir(dir);
      const parsed = await Promise.all(
        files.map(async (f) => JSON.parse(await fs.readFile(path.join(dir, f), 'utf8'))),
      );
      await writeFileAtomic(
        path.join(root, 'RawOutputs', job.data.name, 'result.json'),
        JSON.stringify(parsed),
      );
      return files.length;
    },
    { connection, prefix, concurrency: CONCURRENCY },
  );
  const names = (await fs.readdir(path.join(root, 'Inputs'))).sort();
  const t0 = performance.now();
  const done = drain(events, names.length);
  await queue.addBulk(names.map((name) => ({ name: 'batches', data: { name }, opts: { jobId: name } })));
  await done;
  const seconds = (performance.now() - t0) / 1000;
  const d = await durations(queue);
  await worker.close();
  await queue.obliterate({ force: true });
  await events.close();
  await queue.close();
  connection.disconnect();
  return { batchesPerSecond: names.length / seconds, p50: percentile(d, 50), p99: percentile(d, 99) };
}

async function dockhand(root: string) {
  const prefix = `bench-bdh-${randomBytes(4).toString('hex')}`;
  const config = loadConfig({
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    CLOUD_INFRA_DATA_DIR: root,
    DATA_DIR: root,
    LOG_LEVEL: 'silent',
  });
  const running = await startRole('all', config, { listen: false });
  const events = new QueueEvents('batches', { connection: { url: REDIS_URL }, prefix });
  await events.waitUntilReady();
  // The startup tick may already be enqueueing; the manual tick below is idempotent with it.
  const t0 = performance.now();
  const done = drain(events, BATCHES);
  const tick = await running.app.inject({ method: 'POST', url: '/batches/tick' });
  if (tick.statusCode !== 200) throw new Error(tick.body);
  await done;
  const seconds = (performance.now() - t0) / 1000;
  const d = await durations(running.queues.batches);
  await running.queues.batches.obliterate({ force: true });
  await events.close();
  await running.close();
  return { batchesPerSecond: BATCHES / seconds, p50: percentile(d, 50), p99: percentile(d, 99) };
}

const root = mkdtempSync(path.join(tmpdir(), 'dockhand-bench-'));
try {
  generate(root, BATCHES);
  const engine = engineAlone();
  const rawFigures = await raw(root);
  const dh = await dockhand(root);
  console.log(`\nEngine alone: ${ENGINE_BATCHES} batches × 16 metrics in memory`);
  console.log(
    `  ${engine.scoringsPerSecond.toFixed(0)} metric scorings/s (${engine.batchesPerSecond.toFixed(0)} batches/s) — goal ≥ 10,000: ${engine.scoringsPerSecond >= 10_000 ? 'met' : 'NOT met'}`,
  );
  console.log(
    `\nEnd to end: ${BATCHES} batches of 16 files on disk, worker concurrency ${CONCURRENCY} on both sides`,
  );
  console.log('| side | batches/s | p50 ms per batch | p99 ms |\n|---|---|---|---|');
  console.log(
    `| raw BullMQ + read 16 files + write result (no scoring, no lock/state) | ${rawFigures.batchesPerSecond.toFixed(0)} | ${rawFigures.p50} | ${rawFigures.p99} |`,
  );
  console.log(
    `| Dockhand (tick → queue → lock, score, atomic result, processed.json) | ${dh.batchesPerSecond.toFixed(0)} | ${dh.p50} | ${dh.p99} |`,
  );
  console.log(
    `\nDockhand ${dh.batchesPerSecond.toFixed(0)} batches/s — goal ≥ 200: ${dh.batchesPerSecond >= 200 ? 'met' : 'NOT met'}; ${((dh.batchesPerSecond / rawFigures.batchesPerSecond) * 100).toFixed(0)}% of the raw floor`,
  );
} finally {
  rmSync(root, { recursive: true, force: true });
}
process.exit(0);
