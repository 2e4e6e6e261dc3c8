// npm run bench:jobs — HTTP jobs as a user of `npm start` gets them, beside raw BullMQ, in one
// run. BENCH_RUNS runs (default 3), each on fresh servers; per-run tables, then min / median / max.
//
// Both sides fetch the same loopback HTTP server (a child process) with the same worker
// concurrency (HTTP_JOBS_CONCURRENCY's default), and both are timed the same way: from the
// moment a job is handed in to its `completed` event, seen by the bench over QueueEvents.
//   raw:      queue.add → Worker(processor = undici request) → completed
//   Dockhand: POST /jobs to `node scripts/dockhand.js all`, a separate process with npm start's
//             defaults (auth on, rate limit on, LOG_LEVEL=info) → enqueue → Worker (SSRF-guarded
//             fetch, 1 MiB cap, progress) → completed
//   tuned:    Dockhand again on a fresh server, with the tuned variant, labelled
// HTTP_JOBS_ALLOWLIST=127.0.0.1 is set on every Dockhand server: without it the loopback target
// is refused, as it should be. Every job must succeed; failures are counted and shouted.
// Env: BENCH_RUNS (3), BENCH_JOBS (jobs under load, 3000), BENCH_IN_FLIGHT (client-side
//      outstanding submissions under load, 50), BENCH_SEQUENTIAL (one-at-a-time jobs, 300),
//      BENCH_DEADLINE_SECONDS (900), BENCH_KEEP_LOGS.
import { Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { measure, type Submit, startTarget } from './bench-job-timing.ts';
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
  TUNED_VARIANT,
  type Variant,
} from './bench-kit.ts';

const JOBS = envInt('BENCH_JOBS', 3000);
const IN_FLIGHT = envInt('BENCH_IN_FLIGHT', 50);
const SEQUENTIAL = envInt('BENCH_SEQUENTIAL', 300);
const CONCURRENCY = DEFAULTS.httpJobs.concurrency;
const GOAL = 0.8;
const LOAD = `load (${JOBS} jobs, ${IN_FLIGHT} in flight)`;
const SEQ = `sequential (${SEQUENTIAL} jobs, one at a time)`;
const RAW = `raw BullMQ (add → worker fetch), worker concurrency ${CONCURRENCY}`;
const dhLabel = (v: Variant) => `Dockhand ${v.label} (POST /jobs → completed)`;

async function raw(targetUrl: string): Promise<[Figures, Figures]> {
  const prefix = freshPrefix('raw');
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
  const close = defer(async () => {
    await worker.close();
    await events.close();
    await queue.close();
    connection.disconnect();
  });
  await events.waitUntilReady();
  let n = 0;
  const submit: Submit = async () => {
    const job = await queue.add(
      'http-jobs',
      { url: targetUrl },
      { jobId: `j${n++}`, removeOnComplete: { count: 10_000 } },
    );
    return { id: String(job.id) };
  };
  const out: [Figures, Figures] = [
    await measure(events, submit, JOBS, IN_FLIGHT),
    await measure(events, submit, SEQUENTIAL, 1, true),
  ];
  await close();
  return out;
}

async function dockhand(variant: Variant, targetUrl: string): Promise<[Figures, Figures]> {
  const server = await startServer(variant, { env: { HTTP_JOBS_ALLOWLIST: '127.0.0.1' } });
  const api = apiClient(server, IN_FLIGHT);
  const events = new QueueEvents('http-jobs', { connection: { url: REDIS_URL }, prefix: server.prefix });
  const closeEvents = defer(() => events.close());
  await events.waitUntilReady();
  const submit: Submit = async () => {
    const res = await api.call('POST', '/jobs', { url: targetUrl });
    if (res.status !== 202)
      return { failed: failure(`${res.status} ${String(res.json.error)}`, res.json.message) };
    return { id: String(res.json.id) };
  };
  const out: [Figures, Figures] = [
    await measure(events, submit, JOBS, IN_FLIGHT),
    await measure(events, submit, SEQUENTIAL, 1, true),
  ];
  await closeEvents();
  await api.close();
  console.log(
    `${variant.label}: ready in ${server.readySeconds.toFixed(1)} s; ${describeLog(await server.stop())}`,
  );
  return out;
}

interface RunResult {
  rows: Map<string, Figures>;
  ratios: Record<string, number>;
}

async function oneRun(run: number, targetUrl: string): Promise<RunResult> {
  console.log(`\n## Run ${run} of ${RUNS}\n`);
  const rows = new Map<string, Figures>();
  const [rawLoad, rawSeq] = await raw(targetUrl);
  const [dhLoad, dhSeq] = await dockhand(DEFAULT_VARIANT, targetUrl);
  const [tunedLoad, tunedSeq] = await dockhand(TUNED_VARIANT, targetUrl);
  rows.set(`${RAW}, ${LOAD}`, rawLoad);
  rows.set(`${dhLabel(DEFAULT_VARIANT)}, ${LOAD}`, dhLoad);
  rows.set(`${dhLabel(TUNED_VARIANT)}, ${LOAD}`, tunedLoad);
  rows.set(`${RAW}, ${SEQ}`, rawSeq);
  rows.set(`${dhLabel(DEFAULT_VARIANT)}, ${SEQ}`, dhSeq);
  rows.set(`${dhLabel(TUNED_VARIANT)}, ${SEQ}`, tunedSeq);
  console.log(`\n${runTable(rows, 'jobs/s')}\n`);
  const ratios = {
    'Dockhand defaults / raw, jobs/s under load': dhLoad.perSecond / rawLoad.perSecond,
    'Dockhand tuned / raw, jobs/s under load': tunedLoad.perSecond / rawLoad.perSecond,
    'Dockhand defaults / raw, sequential p50': dhSeq.p50 / rawSeq.p50,
  };
  for (const [k, v] of Object.entries(ratios)) console.log(`- ${k}: ${v.toFixed(2)}`);
  for (const [label, f] of rows) shoutFailures(`run ${run}, ${label}`, f);
  return { rows, ratios };
}

await runBench('bench:jobs', async () => {
  console.log(
    `# bench:jobs — HTTP jobs against a loopback target, ${RUNS} runs (min / median / max)\n\n` +
      `Dockhand side: \`node scripts/dockhand.js all\` as a separate process, client over loopback ` +
      `(undici Pool). npm start defaults: ${DEFAULTS_DESCRIPTION}: HTTP_JOBS_CONCURRENCY=${CONCURRENCY}; ` +
      `plus HTTP_JOBS_ALLOWLIST=127.0.0.1 on every server (the target is on loopback). ` +
      `Raw BullMQ: the same worker concurrency, the same target. Then ${TUNED_VARIANT.label}.`,
  );
  const targetUrl = await startTarget();
  const runs: RunResult[] = [];
  for (let run = 1; run <= RUNS; run++) runs.push(await oneRun(run, targetUrl));

  console.log(`\n## Summary over ${RUNS} runs: min / median / max\n`);
  console.log(
    summaryTable(
      runs.map((r) => r.rows),
      'jobs/s',
    ),
  );
  console.log('');
  for (const key of Object.keys(runs[0]?.ratios ?? {})) {
    console.log(`- ${key}: ${spread(runs.map((r) => r.ratios[key] as number))}`);
  }
  const shares = runs.map((r) => r.ratios['Dockhand defaults / raw, jobs/s under load'] as number);
  const medianShare = median(shares);
  console.log('');
  goal(
    `Dockhand (npm start defaults) ≥ ${GOAL * 100}% of raw throughput under load (median)`,
    `${(medianShare * 100).toFixed(0)}% (runs: ${shares.map((s) => `${(s * 100).toFixed(0)}%`).join(', ')})`,
    medianShare >= GOAL,
  );
  const total = mergeFailures(runs.flatMap((r) => [...r.rows.values()].map((f) => f.failures)));
  const failed = Object.values(total).reduce((a, b) => a + b, 0);
  console.log(
    failed === 0
      ? '\nEvery job succeeded.'
      : `\n!!! ${failed} JOBS FAILED over ${RUNS} runs: ${Object.entries(total)
          .map(([k, n]) => `${k} ×${n}`)
          .join(', ')} — every job should succeed !!!\nFirst message of each cause:\n${failureMessages()}`,
  );
});
