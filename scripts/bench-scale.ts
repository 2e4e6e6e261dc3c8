// npm run bench:scale — the queue path with 1, 2 and 4 worker processes against one Redis,
// what Redis spends per job, and where one Redis stops feeding more workers. BENCH_RUNS runs
// (default 3); per-run tables, then min / median / max, then the projection.
//
// Each configuration gets its own private redis-server (another port, AOF on as npm start's
// Redis has it, no RDB), so INFO counts only its own work, and real processes:
//   raw:      N processes each running a bare BullMQ Worker (scripts/bench-scale-raw-worker.ts)
//             with HTTP_JOBS_CONCURRENCY's default and a plain undici fetch; the bench adds
//             with queue.add (the catalog's http-jobs job options)
//   Dockhand: `node scripts/dockhand.js gateway` and N × `node scripts/dockhand.js worker`, npm
//             start's defaults (auth on, rate limit on, LOG_LEVEL=info, warm pool filled), one
//             shared QUEUE_PREFIX, DATA_DIR and API key; each worker on its own free
//             WORKER_METRICS_PORT (8001 is one per host); the bench calls the gateway
// HTTP jobs to a loopback server answering `ok` (HTTP_JOBS_ALLOWLIST=127.0.0.1 on every Dockhand
// process: without it the SSRF guard refuses the target, as it should), both sides timed from
// hand-in to the `completed` event the bench sees over QueueEvents. Then, on the same Dockhand
// processes, no-op function calls (POST /functions/noop/invoke, synchronous; Docker), after a
// warm-up burst that makes each worker's containers; and batches (POST /batches with the 16
// sample metric files: folder written, queued, scored, result.json written, timed to the job's
// `completed`); no raw side for those two.
// Per window: Redis main-thread and process CPU from INFO cpu, commands from INFO
// commandstats, each Dockhand process's CPU from /proc/<pid>/stat, the machine's from
// /proc/stat; before the load, an idle window of BENCH_IDLE_SECONDS gives the idle cost.
// On a machine with fewer cores than processes, more workers measure contention, not scale:
// the projection comes from Redis CPU per job and a worker's CPU per job, not from N=4.
// Env: BENCH_RUNS (3), BENCH_WORKERS ("1,2,4"), BENCH_MIX ("http,functions,batches"), BENCH_JOBS
//      (3000), BENCH_IN_FLIGHT (50), BENCH_FN_WARMUP (100), BENCH_FN_CALLS (2000),
//      BENCH_FN_IN_FLIGHT (32), BENCH_BATCHES (200), BENCH_BATCH_IN_FLIGHT (16), BENCH_IDLE_SECONDS (5), BENCH_DEADLINE_SECONDS (2400: eighteen
//      sets of processes, each started and stopped), BENCH_KEEP_LOGS.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, hostname, loadavg } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { batchJobId } from '../processors/batches.ts';
import { queueCatalog } from '../queues/registry.ts';
import { RUNTIME_NAMES } from '../runtimes/catalog.ts';
import { OWNER_LABEL } from '../runtimes/docker-sandbox.ts';
import { sampleBatch } from '../test/helpers/batch-samples.ts';
import { startRedisServer } from '../test/helpers/redis-server.ts';
import { measure, type Submit, startTarget } from './bench-job-timing.ts';
import {
  apiClient,
  DEFAULT_VARIANT,
  DEFAULTS,
  DEFAULTS_DESCRIPTION,
  defer,
  describeLog,
  docker,
  envInt,
  type Figures,
  failure,
  failureMessages,
  int,
  median,
  mergeFailures,
  ms,
  RUNS,
  runBench,
  type Server,
  shoutFailures,
  spread,
  startServer,
  table,
  timed,
  WORKDIR,
} from './bench-kit.ts';
import {
  commandCalls,
  machineTicks,
  parseInfo,
  procCpuSeconds,
  projectWorkers,
  redisCpuSeconds,
  type WindowCost,
  windowCost,
  workerRate,
} from './bench-scale-model.ts';

const JOBS = envInt('BENCH_JOBS', 3000);
const IN_FLIGHT = envInt('BENCH_IN_FLIGHT', 50);
const IDLE_SECONDS = envInt('BENCH_IDLE_SECONDS', 5);
const WORKER_COUNTS = (process.env.BENCH_WORKERS ?? '1,2,4').split(',').map((x) => {
  const n = Number(x.trim());
  if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_WORKERS must list whole numbers ≥ 1 (got ${x}).`);
  return n;
});
const CONCURRENCY = DEFAULTS.httpJobs.concurrency;
const MIXES = (process.env.BENCH_MIX ?? 'http,functions,batches').split(',').map((x) => {
  const mix = x.trim();
  if (mix !== 'http' && mix !== 'functions' && mix !== 'batches')
    throw new Error(`BENCH_MIX must list http, functions and/or batches (got ${x}).`);
  return mix;
});
const FN_CALLS = envInt('BENCH_FN_CALLS', 2000);
const BATCHES = envInt('BENCH_BATCHES', 200);
const BATCH_IN_FLIGHT = envInt('BENCH_BATCH_IN_FLIGHT', 16);
const FN_IN_FLIGHT = envInt('BENCH_FN_IN_FLIGHT', 32);
const FN_WARMUP = envInt('BENCH_FN_WARMUP', 100);
const FN_CONCURRENCY = DEFAULTS.functions.concurrency;
const HANDLER = 'exports.handler = async () => ({ ok: true });';
const CORES = availableParallelism();
const TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();
/** Warm containers each worker makes at start (POOL_MIN_IDLE per runtime); waited for, so start-up is not measured. */
const WARM_PER_WORKER = DEFAULTS.docker.poolMinIdle * RUNTIME_NAMES.length;
const ROOT = path.resolve(import.meta.dirname, '..');

// --- measuring a window ----------------------------------------------------------------

interface Snapshot {
  main: number;
  total: number;
  calls: number;
  /** CPU seconds of each process measured (by pid). */
  procs: Map<number, number>;
  machine: { busy: number; total: number };
  at: number;
}

async function snapshot(redis: Redis, pids: number[]): Promise<Snapshot> {
  const info = parseInfo(`${await redis.info('cpu')}\n${await redis.info('commandstats')}`);
  return {
    ...redisCpuSeconds(info),
    calls: commandCalls(info),
    procs: new Map(
      pids.map((pid) => [pid, procCpuSeconds(readFileSync(`/proc/${pid}/stat`, 'utf8'), TICKS)]),
    ),
    machine: machineTicks(readFileSync('/proc/stat', 'utf8')),
    at: performance.now(),
  };
}

/** Redis main-thread CPU while every process is up and idle, ms per second. */
async function idleCost(redis: Redis): Promise<number> {
  const before = await snapshot(redis, []);
  await sleep(IDLE_SECONDS * 1000);
  const after = await snapshot(redis, []);
  return ((after.main - before.main) * 1000) / ((after.at - before.at) / 1000);
}

type Mix = 'http' | 'functions' | 'batches';

interface Row {
  mix: Mix;
  workers: number;
  figures: Figures;
  cost: WindowCost;
  /** Every worker process's CPU together, ms per 1,000 jobs. */
  workerMsPer1000: number;
  /** The gateway's CPU, ms per 1,000 jobs (Dockhand only; raw adds from the bench). */
  gatewayMsPer1000?: number;
  idleRedisMsPerSecond: number;
  /** Cores the whole machine had busy over the window (every process on it, others' too). */
  machineCores: number;
}

async function loadWindow(
  redis: Redis,
  workerPids: number[],
  gatewayPid: number | undefined,
  run: () => Promise<Figures>,
): Promise<Omit<Row, 'mix' | 'workers' | 'idleRedisMsPerSecond'>> {
  const pids = gatewayPid === undefined ? workerPids : [...workerPids, gatewayPid];
  const before = await snapshot(redis, pids);
  const result = await run();
  const after = await snapshot(redis, pids);
  const seconds = (after.at - before.at) / 1000;
  const cpuMsPer1000 = (ps: number[]) =>
    result.ok > 0
      ? (ps.reduce((sum, pid) => sum + (after.procs.get(pid) ?? 0) - (before.procs.get(pid) ?? 0), 0) * 1e6) /
        result.ok
      : 0;
  const ticks = after.machine.total - before.machine.total;
  return {
    figures: result,
    cost: windowCost(before, after, result.ok, seconds),
    workerMsPer1000: cpuMsPer1000(workerPids),
    gatewayMsPer1000: gatewayPid === undefined ? undefined : cpuMsPer1000([gatewayPid]),
    machineCores: ticks > 0 ? (CORES * (after.machine.busy - before.machine.busy)) / ticks : 0,
  };
}

// --- the processes -----------------------------------------------------------------------

/** A private redis-server as npm start's (AOF, everysec; no RDB) on a free port, and a client for INFO. */
async function privateRedis(): Promise<{ url: string; client: Redis; stop: () => Promise<void> }> {
  const dir = mkdtempSync(path.join(WORKDIR, 'redis-'));
  const server = await startRedisServer(['--appendonly', 'yes', '--appendfsync', 'everysec', '--dir', dir]);
  const client = new Redis(server.url);
  const stop = defer(async () => {
    client.disconnect();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return { url: server.url, client, stop };
}

async function startRawWorker(
  redisUrl: string,
  prefix: string,
): Promise<{ pid: number; stop: () => Promise<void> }> {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'scripts/bench-scale-raw-worker.ts')],
    {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        BENCH_REDIS_URL: redisUrl,
        BENCH_PREFIX: prefix,
        BENCH_CONCURRENCY: String(CONCURRENCY),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const exited = once(child, 'exit');
  const stop = defer(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  });
  const ready = await Promise.race([
    once(child.stdout as NodeJS.ReadableStream, 'data').then(() => true),
    exited.then(() => false),
  ]);
  if (!ready) throw new Error('A raw worker exited before it was ready.');
  child.stdout?.resume();
  return { pid: child.pid as number, stop };
}

/**
 * Each worker fills its warm pool after /ready; the load waits until every worker has its
 * containers running, so their creation is not measured. Bounded: a note if it runs out.
 */
async function waitForWarmPools(pids: number[]): Promise<boolean> {
  const until = performance.now() + 60_000;
  while (performance.now() < until) {
    const counts = await Promise.all(
      pids.map(async (pid) => {
        const found = await docker.listContainers({
          filters: { label: [`${OWNER_LABEL}=${hostname()}/${pid}`], status: ['running'] },
        });
        return found.length;
      }),
    );
    if (counts.every((n) => n >= WARM_PER_WORKER)) return true;
    await sleep(250);
  }
  console.log(`note: the workers' warm pools did not reach ${WARM_PER_WORKER} containers each within 60 s`);
  return false;
}

// --- the two sides -----------------------------------------------------------------------

async function rawSide(workers: number, targetUrl: string): Promise<Row> {
  const redis = await privateRedis();
  const prefix = 'bench-scale-raw';
  const procs = await Promise.all(Array.from({ length: workers }, () => startRawWorker(redis.url, prefix)));
  const queue = new Queue('http-jobs', { connection: { url: redis.url }, prefix });
  const events = new QueueEvents('http-jobs', { connection: { url: redis.url }, prefix });
  const closeClients = defer(async () => {
    await events.close();
    await queue.close();
  });
  await events.waitUntilReady();
  await queue.waitUntilReady();
  const idleRedisMsPerSecond = await idleCost(redis.client);
  let n = 0;
  const submit: Submit = async () => {
    const job = await queue.add(
      'http-jobs',
      { url: targetUrl },
      { ...queueCatalog['http-jobs'].jobOptions, jobId: `j${n++}` },
    );
    return { id: String(job.id) };
  };
  const window = await loadWindow(
    redis.client,
    procs.map((p) => p.pid),
    undefined,
    () => measure(events, submit, JOBS, IN_FLIGHT),
  );
  await closeClients();
  await Promise.all(procs.map((p) => p.stop()));
  await redis.stop();
  return { mix: 'http', workers, idleRedisMsPerSecond, ...window };
}

/** The gateway and workers of one installation, measured for each mix asked for. */
async function dockhandSide(workers: number, targetUrl: string): Promise<Row[]> {
  const redis = await privateRedis();
  const shared = {
    redisUrl: redis.url,
    prefix: 'bench-scale-dh',
    dataDir: mkdtempSync(path.join(WORKDIR, 'data-')),
    apiKey: `bench-${randomBytes(12).toString('hex')}`,
    env: { HTTP_JOBS_ALLOWLIST: '127.0.0.1' },
  };
  defer(() => rmSync(shared.dataDir, { recursive: true, force: true }));
  const gateway = await startServer(DEFAULT_VARIANT, { ...shared, role: 'gateway' });
  const procs: Server[] = await Promise.all(
    Array.from({ length: workers }, () => startServer(DEFAULT_VARIANT, { ...shared, role: 'worker' })),
  );
  await waitForWarmPools(procs.map((p) => p.pid));
  const api = apiClient(gateway, IN_FLIGHT);
  const events = new QueueEvents('http-jobs', { connection: { url: redis.url }, prefix: shared.prefix });
  const closeEvents = defer(() => events.close());
  await events.waitUntilReady();
  const idleRedisMsPerSecond = await idleCost(redis.client);
  const submit: Submit = async () => {
    const res = await api.call('POST', '/jobs', { url: targetUrl });
    if (res.status !== 202)
      return { failed: failure(`${res.status} ${String(res.json.error)}`, res.json.message) };
    return { id: String(res.json.id) };
  };
  const pids = procs.map((p) => p.pid);
  const rows: Row[] = [];
  if (MIXES.includes('http')) {
    const window = await loadWindow(redis.client, pids, gateway.pid, () =>
      measure(events, submit, JOBS, IN_FLIGHT),
    );
    rows.push({ mix: 'http', workers, idleRedisMsPerSecond, ...window });
  }
  await closeEvents();
  if (MIXES.includes('batches')) {
    const window = await batchRuns(
      api,
      redis.url,
      redis.client,
      shared.dataDir,
      shared.prefix,
      pids,
      gateway.pid,
    );
    rows.push({ mix: 'batches', workers, idleRedisMsPerSecond, ...window });
  }
  if (MIXES.includes('functions')) {
    const window = await functionCalls(api, redis.client, pids, gateway.pid);
    rows.push({ mix: 'functions', workers, idleRedisMsPerSecond, ...window });
  }
  await api.close();
  const logs = await Promise.all([gateway, ...procs].map((p) => p.stop()));
  console.log(`gateway + ${workers} worker(s): ${logs.map(describeLog).join('; ')}`);
  await redis.stop();
  return rows;
}

/**
 * No-op function calls through the gateway, as bench:functions makes them (deployed as the
 * README deploys, its concurrency left to the API default). A warm-up burst first makes the
 * containers on every worker; the window then times FN_CALLS synchronous calls.
 */
async function functionCalls(
  api: ReturnType<typeof apiClient>,
  redis: Redis,
  workerPids: number[],
  gatewayPid: number,
): Promise<Omit<Row, 'mix' | 'workers' | 'idleRedisMsPerSecond'>> {
  const res = await api.call('PUT', '/functions/noop', {
    runtime: 'node20',
    handler: 'index.handler',
    memoryMb: 128,
    timeoutMs: 5000,
    code: { files: { 'index.js': HANDLER } },
  });
  if (res.status >= 300) throw new Error(`deploy noop: ${res.status} ${JSON.stringify(res.json)}`);
  const invoke = async () => {
    const out = await api.call('POST', '/functions/noop/invoke', {});
    if (out.status !== 200) return failure(`${out.status} ${String(out.json.error)}`, out.json.message);
    if (out.json.status !== 'SUCCESS')
      return failure(`200 ${String(out.json.status)}`, JSON.stringify(out.json));
    return undefined;
  };
  const warmup = await timed(FN_WARMUP, FN_IN_FLIGHT, invoke);
  shoutFailures('function warm-up burst', warmup);
  return loadWindow(redis, workerPids, gatewayPid, () => timed(FN_CALLS, FN_IN_FLIGHT, invoke));
}

/**
 * Batches as users drop them: POST /batches with the 16 sample metric files (folder written,
 * queued, scored by a worker, result.json written), timed from the POST to the job's completion.
 * Their cost is mostly the files and the engine, not Redis; the row says how much of each.
 */
async function batchRuns(
  api: ReturnType<typeof apiClient>,
  redisUrl: string,
  redis: Redis,
  dataDir: string,
  prefix: string,
  workerPids: number[],
  gatewayPid: number,
): Promise<Omit<Row, 'mix' | 'workers' | 'idleRedisMsPerSecond'>> {
  const events = new QueueEvents('batches', { connection: { url: redisUrl }, prefix });
  await events.waitUntilReady();
  const files = sampleBatch(0.8);
  const inputs = path.join(dataDir, 'cloud_infra', 'Inputs');
  let next = 0;
  const submit: Submit = async () => {
    const name = `scale-${workerPids.length}-${next++}`;
    const res = await api.call('POST', '/batches', { name, files });
    if (res.status !== 201)
      return { failed: failure(`${res.status} ${String(res.json.error)}`, res.json.message) };
    // The batches queue's job id is the folder's absolute path (processors/batches.ts).
    return { id: batchJobId(path.join(inputs, name)) };
  };
  try {
    return await loadWindow(redis, workerPids, gatewayPid, () =>
      measure(events, submit, BATCHES, BATCH_IN_FLIGHT),
    );
  } finally {
    await events.close();
  }
}

// --- tables ------------------------------------------------------------------------------

const RAW = `HTTP jobs, raw: bare BullMQ worker processes (concurrency ${CONCURRENCY}), the bench adds`;
const DH_HTTP = 'HTTP jobs, Dockhand npm start defaults: gateway + workers, POST /jobs';
const DH_BATCH = `batches of 16 metric files, Dockhand npm start defaults: gateway + workers, POST /batches, ${BATCH_IN_FLIGHT} in flight`;
const DH_FN = `no-op function calls, Dockhand npm start defaults: gateway + workers, POST …/invoke, ${FN_IN_FLIGHT} in flight`;
const rowLabel = (kind: 'raw' | Mix, n: number) =>
  `${kind === 'raw' ? RAW : kind === 'http' ? DH_HTTP : kind === 'batches' ? DH_BATCH : DH_FN}, ${n} worker${n === 1 ? '' : 's'}`;

/** Column → how it is read from a row and printed; the docs explain each. */
const COLUMNS: Array<[string, (r: Row) => number | undefined, (x: number) => string]> = [
  ['per s', (r) => r.figures.perSecond, int],
  ['p50 ms', (r) => r.figures.p50, ms],
  ['p99 ms', (r) => r.figures.p99, ms],
  ['Redis main ms/1k', (r) => r.cost.redisMainMsPer1000, int],
  ['Redis all ms/1k', (r) => r.cost.redisTotalMsPer1000, int],
  ['cmds/job', (r) => r.cost.commandsPerJob, (x) => x.toFixed(1)],
  ['Redis busy', (r) => r.cost.redisBusy, (x) => `${(x * 100).toFixed(0)}%`],
  ['workers ms/1k', (r) => r.workerMsPer1000, int],
  ['gateway ms/1k', (r) => r.gatewayMsPer1000, int],
  ['idle Redis ms/s', (r) => r.idleRedisMsPerSecond, (x) => x.toFixed(1)],
  ['cores busy', (r) => r.machineCores, (x) => x.toFixed(2)],
];

function rowsTable(rows: Map<string, Row[]>): string {
  return table(
    ['path', ...COLUMNS.map(([name]) => name), 'failed'],
    [...rows].map(([label, rs]) => {
      const failed = rs.reduce((sum, r) => sum + r.figures.calls - r.figures.ok, 0);
      return [
        label,
        ...COLUMNS.map(([, get, format]) => {
          const xs = rs.map(get).filter((x): x is number => x !== undefined);
          if (xs.length === 0) return '–';
          return xs.length === 1 ? format(xs[0] as number) : spread(xs, format);
        }),
        failed === 0
          ? '0'
          : `**${failed}** (${Object.entries(mergeFailures(rs.map((r) => r.figures.failures)))
              .map(([k, v]) => `${k} ×${v}`)
              .join(', ')})`,
      ];
    }),
  );
}

/** Labels in a fixed order: raw first, then Dockhand's HTTP jobs, then function calls; by worker count. */
function ordered(rows: Map<string, Row[]>): Map<string, Row[]> {
  const rank = (label: string) =>
    label.startsWith('HTTP jobs, raw')
      ? 0
      : label.startsWith('HTTP')
        ? 1
        : label.startsWith('batches')
          ? 2
          : 3;
  return new Map(
    [...rows].sort(([a, ra], [b, rb]) => rank(a) - rank(b) || (ra[0]?.workers ?? 0) - (rb[0]?.workers ?? 0)),
  );
}

// --- the projection ----------------------------------------------------------------------

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

function projection(what: string, rows: Row[], concurrency: number, durations: number[]): void {
  if (rows.length === 0) return;
  const redisMsPer1000 = median(rows.map((r) => r.cost.redisMainMsPer1000));
  const commandsPerJob = median(rows.map((r) => r.cost.commandsPerJob));
  // A worker's own cost from the fewest workers measured: with more processes than cores, each
  // worker's CPU per job grows with contention and its fixed polling spread over fewer jobs,
  // neither of which a worker on a machine of its own pays.
  const fewest = Math.min(...rows.map((r) => r.workers));
  const alone = rows.filter((r) => r.workers === fewest);
  const workerMsPer1000 = median(alone.map((r) => r.workerMsPer1000));
  const gatewayMsPer1000 = median(alone.map((r) => r.gatewayMsPer1000 ?? 0));
  // The gateway and each worker counted alike: an upper bound on a worker's share.
  const idlePerProcess = median(rows.map((r) => r.idleRedisMsPerSecond / (r.workers + 1)));
  const cpuBoundRate = 1e6 / workerMsPer1000;
  const at = (budgetMsPerSecond: number, workerJobsPerSecond: number) =>
    projectWorkers({
      redisMsPer1000,
      idleMsPerSecondPerProcess: idlePerProcess,
      workerJobsPerSecond,
      budgetMsPerSecond,
    });
  const full = at(1000, cpuBoundRate);
  console.log(`\n## Projection: where one Redis becomes the bottleneck — ${what}\n`);
  console.log(
    `Inputs, medians over the Dockhand rows of every run:\n` +
      `- Redis main-thread CPU (every worker count, ${rows.length} rows): ${ms(redisMsPer1000)} ms per 1,000, ` +
      `${commandsPerJob.toFixed(1)} commands each (${(redisMsPer1000 / commandsPerJob).toFixed(1)} µs a ` +
      `command). Redis runs every command and script on that one thread, so one saturated core runs at most ` +
      `${int(full.redisJobsPerSecond)}/s (${int(at(700, cpuBoundRate).redisJobsPerSecond)}/s at 70 %, room for ` +
      `bursts and persistence).\n` +
      `- Redis idle cost per Dockhand process: ${idlePerProcess.toFixed(1)} ms of CPU a second.\n` +
      `- A worker process's own CPU (${fewest}-worker rows): ${ms(workerMsPer1000)} ms per 1,000 (function ` +
      `containers not included), so one worker flat out on a core of its own does about ${int(cpuBoundRate)}/s.\n` +
      `- A gateway's CPU (${fewest}-worker rows): ${ms(gatewayMsPer1000)} ms per 1,000: about ` +
      `${Math.ceil((full.redisJobsPerSecond * gatewayMsPer1000) / 1e6)} gateway cores to feed Redis at its ceiling.\n`,
  );
  const scenarios: Array<[string, number]> = [
    [`flat out (CPU-bound on one core)`, cpuBoundRate],
    ...durations.map((seconds): [string, number] => [
      `work of ${seconds * 1000} ms, ${concurrency} at once`,
      workerRate(concurrency, seconds, cpuBoundRate),
    ]),
  ];
  console.log(
    table(
      [
        'each worker',
        'its rate /s',
        'Redis CPU per worker',
        'workers: Redis core saturated',
        'workers: Redis at 70 %',
      ],
      scenarios.map(([label, rate]) => {
        const saturated = at(1000, rate);
        return [
          label,
          int(rate),
          pct(saturated.redisMsPerSecondPerWorker / 1000),
          saturated.workers.toFixed(1),
          at(700, rate).workers.toFixed(1),
        ];
      }),
    ),
  );
}

// --- the run -------------------------------------------------------------------------------

const loadNow = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(', ');

await runBench(
  'bench:scale',
  async () => {
    console.log(
      `# bench:scale — ${WORKER_COUNTS.join(', ')} worker processes on one Redis, ${RUNS} runs (min / median / max)\n\n` +
        `This machine has ${CORES} cores (Node ${process.version}); the bench client, the gateway, the workers, ` +
        `Redis and the loopback target all share them. **More processes than cores measure contention, not ` +
        `scale**: the projection comes from CPU per job (Redis's and a worker's), not from the largest count's ` +
        `throughput.\n\n` +
        `Each configuration: a private redis-server (AOF everysec, no RDB, as npm start's) on its own port. ` +
        `HTTP jobs: ${JOBS}, ${IN_FLIGHT} submissions outstanding. Function calls: ${FN_WARMUP} warm-up, then ` +
        `${FN_CALLS} at ${FN_IN_FLIGHT} in flight. Dockhand: \`dockhand gateway\` + N × \`dockhand worker\`, npm ` +
        `start defaults: ${DEFAULTS_DESCRIPTION}; plus HTTP_JOBS_ALLOWLIST=127.0.0.1 (the target is on ` +
        `loopback), one shared QUEUE_PREFIX, DATA_DIR and API key, and each worker's WORKER_METRICS_PORT a free ` +
        `port; HTTP_JOBS_CONCURRENCY=${CONCURRENCY}, FUNCTIONS_CONCURRENCY=${FN_CONCURRENCY}. Raw: N bare ` +
        `BullMQ worker processes, same concurrency and target. Load average at the start: ${loadNow()}.`,
    );
    const targetUrl = await startTarget();
    const byLabel = new Map<string, Row[]>();
    const record = (rows: Map<string, Row[]>, label: string, row: Row) => {
      rows.set(label, [row]);
      byLabel.set(label, [...(byLabel.get(label) ?? []), row]);
    };
    for (let run = 1; run <= RUNS; run++) {
      console.log(`\n## Run ${run} of ${RUNS} (load average ${loadNow()})\n`);
      const rows = new Map<string, Row[]>();
      for (const n of WORKER_COUNTS) {
        // Which side goes first alternates from run to run.
        const sides = run % 2 === 1 ? (['raw', 'dockhand'] as const) : (['dockhand', 'raw'] as const);
        for (const side of sides) {
          if (side === 'raw' && !MIXES.includes('http')) continue;
          const got = side === 'raw' ? [await rawSide(n, targetUrl)] : await dockhandSide(n, targetUrl);
          for (const row of got) {
            const label = rowLabel(side === 'raw' ? 'raw' : row.mix, n);
            record(rows, label, row);
            shoutFailures(`run ${run}, ${label}`, row.figures);
          }
        }
      }
      console.log(`\n${rowsTable(ordered(rows))}`);
    }

    console.log(`\n## Summary over ${RUNS} runs: min / median / max (load average ${loadNow()})\n`);
    console.log(rowsTable(ordered(byLabel)));
    console.log('');
    for (const kind of ['raw', 'http', 'batches', 'functions'] as const) {
      const base = byLabel.get(rowLabel(kind, WORKER_COUNTS[0] as number));
      if (!base) continue;
      for (const n of WORKER_COUNTS.slice(1)) {
        const these = byLabel.get(rowLabel(kind, n)) ?? [];
        const ratios = these.map((r, i) => r.figures.perSecond / (base[i]?.figures.perSecond || Number.NaN));
        const name =
          kind === 'raw'
            ? 'raw HTTP jobs'
            : kind === 'http'
              ? 'Dockhand HTTP jobs'
              : kind === 'batches'
                ? 'Dockhand batches'
                : 'Dockhand function calls';
        console.log(`- ${name}/s, ${n} workers over ${WORKER_COUNTS[0]}: ${spread(ratios)}`);
      }
    }
    const dockhandRows = (mix: Mix) =>
      [...byLabel]
        .filter(([label]) => !label.startsWith('HTTP jobs, raw'))
        .flatMap(([, rs]) => rs.filter((r) => r.mix === mix));
    projection('HTTP jobs', dockhandRows('http'), CONCURRENCY, [0.05, 0.2, 1]);
    projection('no-op function calls', dockhandRows('functions'), FN_CONCURRENCY, [0.1, 1]);
    projection('batches', dockhandRows('batches'), DEFAULTS.batches.concurrency, [0.5, 5]);
    console.log(
      '\nAssumptions: Redis on a core of its own (not shared as here); per-job Redis CPU the same at ' +
        'any number of workers (the rows show it across the counts measured); small payloads and results; ' +
        "gateways scaled beside the workers (their enqueue is inside the per-job figure, as is the bench's " +
        'own QueueEvents reader — a gateway waiting on synchronous calls runs one too); network round trips ' +
        `cost Redis no CPU. CPU per job measured on a busy ${CORES}-core machine is inflated for Redis and ` +
        'workers alike; the flat-out row depends on their ratio, which holds better than either.',
    );
    const total = mergeFailures([...byLabel.values()].flat().map((r) => r.figures.failures));
    const failed = Object.values(total).reduce((a, b) => a + b, 0);
    console.log(
      failed === 0
        ? '\nEvery job and call succeeded.'
        : `\n!!! ${failed} JOBS OR CALLS FAILED: ${Object.entries(total)
            .map(([k, n]) => `${k} ×${n}`)
            .join(', ')} — every one should succeed !!!\nFirst message of each cause:\n${failureMessages()}`,
    );
    console.log(`Load average at the end: ${loadNow()}.`);
  },
  { deadlineSeconds: 2400 },
);
