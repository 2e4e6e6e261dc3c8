// npm run bench:batches — batch scoring as a user of `npm start` gets it, beside a raw floor, in
// one run. BENCH_RUNS runs (default 3), each on fresh data and a fresh server; per-run tables,
// then min / median / max. Which side goes first alternates from run to run (page cache, CPU
// boost and neighbours favour neither).
//   engine:   scoreBatch() on in-memory inputs (16 metrics each) → metric scorings/s
//   raw:      list the batch folders, BullMQ addBulk, a worker that reads the 16 files and writes
//             result.json unscored (the queue + file I/O floor any runner pays)
//   Dockhand: `node scripts/dockhand.js all`, a separate process with npm start's defaults; the
//             batches appear in its Inputs at once (a rename), then the clock starts and
//             POST /batches/tick runs discovery → queue → batches worker (lock, read, score,
//             atomic result.json, processed.json, unlock) → the last `completed` event
// Worker concurrency on both sides: BATCHES_CONCURRENCY (default as in Dockhand's config); set
// it to run the tuned variant, labelled as such.
// Env: BENCH_RUNS (3), BENCH_BATCHES (1000), BENCH_ENGINE_BATCHES (2000), BATCHES_CONCURRENCY,
//      BENCH_DEADLINE_SECONDS (900), BENCH_KEEP_LOGS.
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { type Job, Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { METRIC_BY_FILE } from '../processors/batches/catalog.ts';
import { type MetricInput, scoreBatch } from '../processors/batches/engine.ts';
import { writeFileAtomic } from '../processors/batches/folder.ts';
import { sampleBatch } from '../test/helpers/batch-samples.ts';
import {
  apiClient,
  DEFAULT_VARIANT,
  DEFAULTS,
  DEFAULTS_DESCRIPTION,
  defer,
  describeLog,
  envInt,
  type Figures,
  failure,
  failureMessages,
  figures,
  freshPrefix,
  goal,
  median,
  mergeFailures,
  REDIS_URL,
  RUNS,
  runBench,
  runTable,
  shoutFailures,
  spread,
  startServer,
  summaryTable,
  type Variant,
  WORKDIR,
} from './bench-kit.ts';

const BATCHES = envInt('BENCH_BATCHES', 1000);
const ENGINE_BATCHES = envInt('BENCH_ENGINE_BATCHES', 2000);
const CONCURRENCY = envInt('BATCHES_CONCURRENCY', DEFAULTS.batches.concurrency);
const VARIANT: Variant =
  CONCURRENCY === DEFAULTS.batches.concurrency
    ? DEFAULT_VARIANT
    : {
        label: `tuned: BATCHES_CONCURRENCY=${CONCURRENCY} (default ${DEFAULTS.batches.concurrency})`,
        env: { BATCHES_CONCURRENCY: String(CONCURRENCY) },
      };
/** How long the batches may take once the clock started. */
const DRAIN_MS = 300_000;

function generate(root: string, n: number) {
  for (let i = 0; i < n; i++) {
    const dir = path.join(root, `b${String(i).padStart(5, '0')}`);
    mkdirSync(dir, { recursive: true });
    for (const [file, content] of Object.entries(sampleBatch((i % 10) / 10))) {
      writeFileSync(path.join(dir, file), JSON.stringify(content));
    }
  }
}

function engineAlone(): number {
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
  return (ENGINE_BATCHES * 16) / ((performance.now() - t0) / 1000);
}

/** Resolves when `n` jobs finished (completed or failed), or after DRAIN_MS; answers the failures. */
function drain(events: QueueEvents, n: number): Promise<Record<string, number>> {
  return new Promise((resolve) => {
    let seen = 0;
    const failures: Record<string, number> = {};
    const finish = () => {
      clearTimeout(timer);
      events.removeAllListeners('completed');
      events.removeAllListeners('failed');
      resolve(failures);
    };
    const timer = setTimeout(() => {
      failures[`no result within ${DRAIN_MS / 1000} s`] = n - seen;
      finish();
    }, DRAIN_MS);
    events.on('completed', () => {
      if (++seen >= n) finish();
    });
    events.on('failed', ({ failedReason }) => {
      const cause = failure('batch failed', failedReason);
      failures[cause] = (failures[cause] ?? 0) + 1;
      if (++seen >= n) finish();
    });
  });
}

/** Per batch: worker start → finish, from the completed jobs. */
async function batchFigures(queue: Queue, seconds: number, failures: Record<string, number>) {
  const jobs: Job[] = await queue.getJobs(['completed'], 0, -1);
  return figures(
    jobs.map((j) => (j.finishedOn ?? 0) - (j.processedOn ?? 0)),
    seconds,
    BATCHES,
    failures,
  );
}

async function raw(inputs: string, outputs: string): Promise<Figures> {
  const prefix = freshPrefix('braw');
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue('batches', { connection, prefix });
  const events = new QueueEvents('batches', { connection: { url: REDIS_URL }, prefix });
  const worker = new Worker(
    'batches',
    async (job) => {
      const dir = path.join(inputs, job.data.name);
      const files = (await fs.readdir(dir)).filter((f) => f.endsWith('.json'));
      const parsed = await Promise.all(
        files.map(async (f) => JSON.parse(await fs.readFile(path.join(dir, f), 'utf8'))),
      );
      await writeFileAtomic(path.join(outputs, job.data.name, 'result.json'), JSON.stringify(parsed));
      return files.length;
    },
    { connection, prefix, concurrency: CONCURRENCY },
  );
  const close = defer(async () => {
    await worker.close();
    await events.close();
    await queue.close();
    connection.disconnect();
  });
  await events.waitUntilReady();
  const t0 = performance.now();
  const done = drain(events, BATCHES);
  const names = (await fs.readdir(inputs)).sort();
  await queue.addBulk(names.map((name) => ({ name: 'batches', data: { name }, opts: { jobId: name } })));
  const failures = await done;
  const f = await batchFigures(queue, (performance.now() - t0) / 1000, failures);
  await close();
  return f;
}

/** Waits (bounded) until the scheduler queue has nothing waiting or running: the startup tick is done. */
async function startupTickDone(prefix: string): Promise<void> {
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const scheduler = new Queue('scheduler', { connection, prefix });
  try {
    const until = performance.now() + 60_000;
    for (let delay = 20; performance.now() < until; delay = Math.min(500, delay * 1.5)) {
      const c = await scheduler.getJobCounts('waiting', 'active', 'prioritized', 'completed', 'failed');
      if ((c.waiting ?? 0) + (c.active ?? 0) + (c.prioritized ?? 0) === 0) return;
      await new Promise((r) => setTimeout(r, delay));
    }
    throw new Error('The startup tick did not finish within 60 s.');
  } finally {
    await scheduler.close();
    connection.disconnect();
  }
}

/** Moves the generated batches into the server's Inputs at once, then times discovery to the last batch. */
async function dockhand(staging: string, dataDir: string): Promise<{ figures: Figures; inputs: string }> {
  const server = await startServer(VARIANT, { dataDir });
  const api = apiClient(server, 1);
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue('batches', { connection, prefix: server.prefix });
  const events = new QueueEvents('batches', { connection: { url: REDIS_URL }, prefix: server.prefix });
  const close = defer(async () => {
    await events.close();
    await queue.close();
    connection.disconnect();
    await api.close();
  });
  await events.waitUntilReady();
  // A tick at start-up finds nothing; the batches arrive after it, all at once.
  await startupTickDone(server.prefix);
  const inputs = path.join(dataDir, 'cloud_infra', 'Inputs');
  mkdirSync(path.dirname(inputs), { recursive: true });
  renameSync(staging, inputs);

  const t0 = performance.now();
  const done = drain(events, BATCHES);
  const tick = await api.call('POST', '/batches/tick');
  if (tick.status !== 200) throw new Error(`POST /batches/tick: ${tick.status} ${JSON.stringify(tick.json)}`);
  const failures = await done;
  const f = await batchFigures(queue, (performance.now() - t0) / 1000, failures);
  await close();
  console.log(
    `${VARIANT.label}: ready in ${server.readySeconds.toFixed(1)} s; ${describeLog(await server.stop())}`,
  );
  return { figures: f, inputs };
}

const RAW = `raw: list + BullMQ addBulk + worker reading 16 files, writing result.json unscored (${BATCHES})`;
const DH = `Dockhand ${VARIANT.label}: tick (discovery) → queue → lock, score, atomic result, processed.json (${BATCHES})`;

interface RunResult {
  rows: Map<string, Figures>;
  engine: number;
  share: number;
}

async function oneRun(run: number): Promise<RunResult> {
  const rawFirst = run % 2 === 1;
  console.log(`\n## Run ${run} of ${RUNS} (${rawFirst ? 'raw' : 'Dockhand'} first)\n`);
  const root = mkdtempSync(path.join(WORKDIR, 'batches-'));
  const removeRoot = defer(() => rmSync(root, { recursive: true, force: true }));
  const staging = path.join(root, 'staging');
  generate(staging, BATCHES);
  const engine = engineAlone();
  let rawFigures: Figures | undefined;
  let where = staging;
  if (rawFirst) rawFigures = await raw(where, path.join(root, 'RawOutputs'));
  const dh = await dockhand(staging, path.join(root, 'data'));
  where = dh.inputs;
  rawFigures ??= await raw(where, path.join(root, 'RawOutputs'));
  await removeRoot();

  const rows = new Map<string, Figures>([
    [RAW, rawFigures],
    [DH, dh.figures],
  ]);
  console.log(`\n${runTable(rows, 'batches/s')}\n`);
  const share = dh.figures.perSecond / rawFigures.perSecond;
  console.log(`- engine alone: ${engine.toFixed(0)} metric scorings/s`);
  console.log(`- Dockhand / raw floor, batches/s: ${(share * 100).toFixed(0)}%`);
  for (const [label, f] of rows) shoutFailures(`run ${run}, ${label}`, f);
  return { rows, engine, share };
}

await runBench('bench:batches', async () => {
  console.log(
    `# bench:batches — ${BATCHES} generated batches of 16 metric files on local disk, ${RUNS} runs ` +
      `(min / median / max)\n\nDockhand side: \`node scripts/dockhand.js all\` as a separate process. ` +
      `npm start defaults: ${DEFAULTS_DESCRIPTION}. Worker concurrency on both sides: ` +
      `BATCHES_CONCURRENCY=${CONCURRENCY}${VARIANT === DEFAULT_VARIANT ? ' (default)' : ' (tuned)'}. ` +
      `Batches/s from the clock start (before discovery on both sides) to the last completed event; ` +
      `p50/p99 are per batch (worker start → finish). Runs alternate which side goes first.`,
  );
  const runs: RunResult[] = [];
  for (let run = 1; run <= RUNS; run++) runs.push(await oneRun(run));

  console.log(`\n## Summary over ${RUNS} runs: min / median / max\n`);
  console.log(
    summaryTable(
      runs.map((r) => r.rows),
      'batches/s',
    ),
  );
  console.log(
    `\n- engine alone (${ENGINE_BATCHES} batches × 16 metrics in memory), metric scorings/s: ${spread(
      runs.map((r) => r.engine),
      (x) => x.toFixed(0),
    )}`,
  );
  console.log(
    `- Dockhand / raw floor, batches/s: ${spread(
      runs.map((r) => r.share * 100),
      (x) => `${x.toFixed(0)}%`,
    )}`,
  );
  const engine = median(runs.map((r) => r.engine));
  const dh = median(runs.map((r) => (r.rows.get(DH) as Figures).perSecond));
  console.log('');
  goal('engine alone ≥ 10,000 metric scorings/s (median)', engine.toFixed(0), engine >= 10_000);
  goal(`Dockhand (${VARIANT.label}) ≥ 200 batches/s (median)`, dh.toFixed(0), dh >= 200);
  const total = mergeFailures(runs.flatMap((r) => [...r.rows.values()].map((f) => f.failures)));
  const failed = Object.values(total).reduce((a, b) => a + b, 0);
  console.log(
    failed === 0
      ? '\nEvery batch succeeded.'
      : `\n!!! ${failed} BATCHES FAILED over ${RUNS} runs: ${Object.entries(total)
          .map(([k, n]) => `${k} ×${n}`)
          .join(', ')} !!!\nFirst message of each cause:\n${failureMessages()}`,
  );
});
