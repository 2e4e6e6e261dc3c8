// npm run bench:functions — what a user of `npm start` gets from a no-op node20 function
// (`async () => ({ ok: true })`, 128 MB), beside its baselines, in one run. BENCH_RUNS runs
// (default 3), each on fresh servers; per-run tables, then min / median / max.
//   (a) naive: docker create + start + wait + remove per call (node -e, same image)
//   (b) the bootstrap channel alone on a warm 128 MB container (framed stdin/stdout), over the
//       unix socket npm start uses here; (b') the same over Docker's attach stream
//   (c) raw BullMQ round trip: add → no-op Worker → completed event (QueueEvents); the worker
//       has FUNCTIONS_CONCURRENCY's default; 1, 8 and 32 calls in flight
//   (d) Dockhand: POST /functions/noop/invoke to `node scripts/dockhand.js all`, a separate
//       process with npm start's defaults (auth on, rate limit on, LOG_LEVEL=info, default
//       pool and concurrencies); 1, 8 and 32 calls in flight
//   (e) warm hits on that fresh server: calls spread at random over more functions than it
//       keeps warm (POOL_MIN_IDLE), one at a time
//       then sequential once more ("again"): the same server past its warm-up
//   (f) (d) again on a fresh server with the tuned variant, labelled
//   (g) the same function on (d)'s server, called through Lambda's API with @aws-sdk/client-lambda
//       (InvokeCommand, SigV4-signed with the server's API key), sequential, each call alternating
//       with one to Dockhand's own route (g'), so both see the same load
// Every call must succeed; failures are counted by cause (429, 503, 504, …) and shouted.
// Env: BENCH_RUNS (3), BENCH_SEQ (calls at concurrency 1, 500), BENCH_LOAD (calls at 8 and 32,
//      2000), BENCH_NAIVE (20), BENCH_CHANNEL (1000), BENCH_WARM_CALLS (600),
//      BENCH_WARM_FUNCTIONS (6), BENCH_COLD_BURST (100), BENCH_DEADLINE_SECONDS (900),
//      BENCH_KEEP_LOGS (keep the servers' logs).
import { hostname } from 'node:os';
import path from 'node:path';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { runtimeCatalog } from '../runtimes/catalog.ts';
import { DockerSandboxDriver } from '../runtimes/docker-sandbox.ts';
import { DEFAULT_INIT_PATH } from '../runtimes/exec-init/install-init.ts';
import { chooseChannel } from '../runtimes/socket-channel.ts';
import { CPU_GROUPS, cpuPerCall, cpuSnapshot } from './bench-cpu.ts';
import {
  apiClient,
  BENCH_LABEL,
  DEFAULT_VARIANT,
  DEFAULTS,
  DEFAULTS_DESCRIPTION,
  defer,
  describeLog,
  docker,
  envInt,
  type Figures,
  failedCount,
  failure,
  failureMessages,
  figures,
  freshPrefix,
  goal,
  median,
  mergeFailures,
  ms,
  REDIS_URL,
  RUN_ID,
  RUNS,
  runBench,
  runTable,
  shoutFailures,
  spread,
  startServer,
  summaryTable,
  TUNED_VARIANT,
  table,
  timed,
  type Variant,
  WORKDIR,
} from './bench-kit.ts';

const SEQ = envInt('BENCH_SEQ', 500);
const LOAD = envInt('BENCH_LOAD', 2000);
const NAIVE = envInt('BENCH_NAIVE', 20);
const CHANNEL = envInt('BENCH_CHANNEL', 1000);
const WARM_CALLS = envInt('BENCH_WARM_CALLS', 600);
const WARM_FUNCTIONS = envInt('BENCH_WARM_FUNCTIONS', 6);
const COLD_BURST = envInt('BENCH_COLD_BURST', 100);
const LEVELS = [1, 8, 32] as const;
const callsAt = (level: number) => (level === 1 ? SEQ : LOAD);
const NODE20 = runtimeCatalog({
  node20: process.env.RUNTIME_IMAGE_NODE20 ?? DEFAULTS.functions.images.node20,
  python3: process.env.RUNTIME_IMAGE_PYTHON3 ?? DEFAULTS.functions.images.python3,
  provided: process.env.RUNTIME_IMAGE_PROVIDED ?? DEFAULTS.functions.images.provided,
}).node20;
const HANDLER = 'exports.handler = async () => ({ ok: true });';
const WORKER_CONCURRENCY = DEFAULTS.functions.concurrency;

async function naive(): Promise<Figures> {
  return timed(NAIVE, 1, async () => {
    const c = await docker.createContainer({
      Image: NODE20.image,
      Cmd: ['/usr/bin/node', '-e', 'process.stdout.write(JSON.stringify({ok:true}))'],
      HostConfig: { NetworkMode: 'none', LogConfig: { Type: 'none', Config: {} } },
      Labels: { [BENCH_LABEL]: RUN_ID },
    });
    try {
      await c.start();
      await c.wait();
    } finally {
      await c.remove({ force: true });
    }
    return undefined;
  });
}

/** (b) over the channel npm start picks on this host (FUNCTIONS_CHANNEL=auto), (b') over the attach stream. */
async function channel(mode: 'auto' | 'attach'): Promise<Figures> {
  const owner = `${hostname()}/${process.pid}`;
  const { sockets, reason } = await chooseChannel(mode, process.env.DOCKER_HOST, {
    initPath: DEFAULT_INIT_PATH,
    root: path.join(WORKDIR, 'sockets'),
    owner,
  });
  // Said, so that (b) is never the attach stream unawares.
  console.log(
    `${mode === 'auto' ? '(b)' : "(b')"} channel: ${sockets ? 'unix socket' : 'attach stream'} (${reason})`,
  );
  const driver = new DockerSandboxDriver(docker, owner, { sockets });
  const sandbox = await driver.create({
    image: NODE20.image,
    cmd: NODE20.cmd,
    memoryMb: 128,
    labels: { [BENCH_LABEL]: RUN_ID },
  });
  const destroy = defer(() => sandbox.destroy());
  await sandbox.channel.waitFor('ready');
  await sandbox.channel.request({
    type: 'load',
    files: { 'index.js': Buffer.from(HANDLER).toString('base64') },
    handler: 'index.handler',
  });
  const invoke = async () => {
    const out = await sandbox.channel.request({ type: 'invoke', event: {}, context: {} });
    return out.ok ? undefined : 'invoke failed';
  };
  await timed(200, 1, invoke); // warm-up
  const f = await timed(CHANNEL, 1, invoke);
  await destroy();
  return f;
}

/** (c) at each concurrency level, on one queue and one worker. */
async function bullmq(): Promise<Map<number, Figures>> {
  const prefix = freshPrefix('rt');
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue('rt', { connection, prefix });
  const events = new QueueEvents('rt', { connection: { url: REDIS_URL }, prefix });
  const worker = new Worker('rt', async () => ({ ok: true }), {
    connection,
    prefix,
    concurrency: WORKER_CONCURRENCY,
  });
  const close = defer(async () => {
    await worker.close();
    await events.close();
    await queue.close();
    connection.disconnect();
  });
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
    return undefined;
  };
  await timed(100, 8, call); // warm-up
  const out = new Map<number, Figures>();
  for (const level of LEVELS) out.set(level, await timed(callsAt(level), level, call));
  await close();
  return out;
}

interface DockhandFigures {
  levels: Map<number, Figures>;
  /** CPU ms per call by process group, per level (scripts/bench-cpu.ts). */
  cpu: Map<number, Record<string, number>>;
  /** (g): the same function through Lambda's Invoke with the AWS SDK and, alternating, the own route. */
  lambdaSdk?: { sdk: Figures; own: Figures };
  warm?: { calls: number; warm: number; failures: Record<string, number> };
  /** The first calls to the just-deployed function, at concurrency 32: containers are made here. */
  coldBurst: Figures;
  /** Sequential again after the levels: the same server past its warm-up (JIT, caches), and its CPU split. */
  again: Figures;
  cpuAgain: Record<string, number>;
  readySeconds: number;
}

/**
 * (g): Lambda's Invoke through the AWS SDK and Dockhand's own route, one call at a time,
 * alternating on the same server and function: both see the same load, so their ratio holds
 * on a busy machine too.
 */
async function lambdaSdk(
  server: Awaited<ReturnType<typeof startServer>>,
  own: () => Promise<string | undefined>,
  name: string,
): Promise<{ sdk: Figures; own: Figures }> {
  // With auth on, an API key signs as its own access key id and secret (docs/lambda-api.md).
  const key = server.headers.authorization?.replace(/^Bearer /, '') ?? 'any';
  const client = new LambdaClient({
    endpoint: server.url,
    region: 'us-east-1',
    credentials: { accessKeyId: key, secretAccessKey: key },
  });
  const close = defer(() => client.destroy());
  const payload = new TextEncoder().encode('{}');
  const sdk = async () => {
    const res = await client.send(new InvokeCommand({ FunctionName: name, Payload: payload }));
    if (res.StatusCode !== 200 || res.FunctionError)
      return failure(`200 ${res.FunctionError}`, Buffer.from(res.Payload ?? []).toString());
    return undefined;
  };
  await timed(50, 1, sdk); // warm-up: the client's connection and signing key
  const pairs = { sdk: [] as number[], own: [] as number[] };
  const failures = { sdk: {} as Record<string, number>, own: {} as Record<string, number> };
  const t0 = performance.now();
  for (let i = 0; i < SEQ; i++) {
    for (const [which, call] of [
      ['sdk', sdk],
      ['own', own],
    ] as const) {
      const s = performance.now();
      let failed: string | undefined;
      try {
        failed = await call();
      } catch (err) {
        failed = (err as Error).name;
      }
      if (failed === undefined) pairs[which].push(performance.now() - s);
      else failures[which][failed] = (failures[which][failed] ?? 0) + 1;
    }
  }
  const seconds = (performance.now() - t0) / 2000;
  await close();
  return {
    sdk: figures(pairs.sdk, seconds, SEQ, failures.sdk),
    own: figures(pairs.own, seconds, SEQ, failures.own),
  };
}

/** (d) and (e) on a fresh server of the given variant; (e) only when asked, (g) with it. */
async function dockhand(variant: Variant, withWarmHits: boolean): Promise<DockhandFigures> {
  const server = await startServer(variant);
  const api = apiClient(server, 32);
  const deploy = async (name: string) => {
    // The README's deploy: concurrency left to the API's default.
    const res = await api.call('PUT', `/functions/${name}`, {
      runtime: 'node20',
      handler: 'index.handler',
      memoryMb: 128,
      timeoutMs: 5000,
      code: { files: { 'index.js': HANDLER } },
    });
    if (res.status >= 300) throw new Error(`deploy ${name}: ${res.status} ${JSON.stringify(res.json)}`);
  };
  let cold = 0;
  const invoke = async (name: string) => {
    const res = await api.call('POST', `/functions/${name}/invoke`, {});
    if (res.status !== 200) return failure(`${res.status} ${String(res.json.error)}`, res.json.message);
    if (res.json.status !== 'SUCCESS')
      return failure(`200 ${String(res.json.status)}`, JSON.stringify(res.json));
    if (res.json.coldStart !== false) cold++;
    return undefined;
  };

  let warm: DockhandFigures['warm'];
  if (withWarmHits) {
    const names = Array.from({ length: WARM_FUNCTIONS }, (_, k) => `f${k + 1}`);
    for (const name of names) await deploy(name);
    const f = await timed(WARM_CALLS, 1, () =>
      invoke(names[Math.floor(Math.random() * names.length)] as string),
    );
    warm = { calls: WARM_CALLS, warm: f.ok - cold, failures: f.failures };
  }
  await deploy('noop');
  // Containers for the concurrent levels are made (cold) here: reported, but not in the levels.
  const coldBurst = await timed(COLD_BURST, 32, () => invoke('noop'));
  const levels = new Map<number, Figures>();
  const cpu = new Map<number, Record<string, number>>();
  const known = { server: server.pid, redis: await localRedisPid() };
  for (const level of LEVELS) {
    const before = cpuSnapshot();
    levels.set(level, await timed(callsAt(level), level, () => invoke('noop')));
    cpu.set(level, cpuPerCall(before, cpuSnapshot(), callsAt(level), known));
  }
  // A fresh process runs its first calls before V8 has optimised the path: sequential once
  // more, on the same server and containers, is what a server that has been up a while gives.
  const beforeAgain = cpuSnapshot();
  const again = await timed(SEQ, 1, () => invoke('noop'));
  const cpuAgain = cpuPerCall(beforeAgain, cpuSnapshot(), SEQ, known);
  const lambda = withWarmHits ? await lambdaSdk(server, () => invoke('noop'), 'noop') : undefined;
  await api.close();
  console.log(
    `${variant.label}: ready in ${server.readySeconds.toFixed(1)} s; ${describeLog(await server.stop())}`,
  );
  return {
    levels,
    cpu,
    lambdaSdk: lambda,
    warm,
    coldBurst,
    again,
    cpuAgain,
    readySeconds: server.readySeconds,
  };
}

const levelLabel = (level: number) =>
  level === 1 ? `sequential (${SEQ})` : `concurrency ${level} (${LOAD})`;
const rawLabel = (level: number) =>
  `(c) raw BullMQ round trip, ${levelLabel(level)}, worker concurrency ${WORKER_CONCURRENCY}`;
const dhLabel = (tag: string, v: Variant, level: number) =>
  `${tag} Dockhand, ${v.label}, ${levelLabel(level)}`;
const burstLabel = (tag: string, v: Variant) =>
  `${tag} cold burst: first ${COLD_BURST} calls to a just-deployed function, ${v.label}, concurrency 32`;
const LAMBDA_LABEL = `(g) Lambda Invoke via @aws-sdk/client-lambda, ${DEFAULT_VARIANT.label}, ${levelLabel(1)}, alternating with (g')`;
const OWN_LABEL = `(g') Dockhand's own route, the same server and function, ${levelLabel(1)}, alternating with (g)`;
const LAMBDA_RATIO = "(g)/(g') p50 sequential: Lambda API over Dockhand's own route";
const NAIVE_LABEL = `(a) naive: container per call (${NAIVE})`;
const CHANNEL_LABEL = `(b) bootstrap channel alone, warm 128 MB container, npm start's channel here (${CHANNEL})`;
const ATTACH_LABEL = `(b') the same over Docker's attach stream (FUNCTIONS_CHANNEL=attach) (${CHANNEL})`;

const FASTER = '(a)/(d) p50 sequential: × faster than a container per call';
const againLabel = (tag: string, v: Variant) =>
  `${tag} Dockhand, ${v.label}, sequential (${SEQ}) again, after the levels above`;
const AGAIN_CPU = `(d) sequential (${SEQ}) again, after the levels`;

/** The Redis server's pid when it runs on this machine (a loopback URL), for the CPU split. */
async function localRedisPid(): Promise<number | undefined> {
  if (!/^rediss?:\/\/([^@/]*@)?(127\.0\.0\.1|localhost|\[::1\])[:/]?/.test(REDIS_URL)) return undefined;
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const pid = /process_id:(\d+)/.exec(await redis.info('server'))?.[1];
    return pid ? Number(pid) : undefined;
  } catch {
    return undefined;
  } finally {
    redis.disconnect();
  }
}

const cpuLabel = (level: number) => `(d) ${levelLabel(level)}`;

/** One row per level of (d): CPU ms per call by process group. */
function cpuTable(rows: Map<string, Record<string, number>[]>, summarise: (xs: number[]) => string): string {
  return table(
    ['CPU ms per call', ...CPU_GROUPS, 'total'],
    [...rows].map(([label, runs]) => [
      label,
      ...[...CPU_GROUPS, 'total'].map((g) => summarise(runs.map((r) => r[g] ?? 0))),
    ]),
  );
}

interface RunResult {
  cpu: Map<string, Record<string, number>>;
  rows: Map<string, Figures>;
  ratios: Record<string, number>;
  warmShare: number;
  failures: Record<string, number>;
}

async function oneRun(run: number): Promise<RunResult> {
  console.log(`\n## Run ${run} of ${RUNS}\n`);
  const rows = new Map<string, Figures>();
  rows.set(NAIVE_LABEL, await naive());
  rows.set(CHANNEL_LABEL, await channel('auto'));
  rows.set(ATTACH_LABEL, await channel('attach'));
  const raw = await bullmq();
  for (const level of LEVELS) rows.set(rawLabel(level), raw.get(level) as Figures);
  const d = await dockhand(DEFAULT_VARIANT, true);
  rows.set(burstLabel('(d)', DEFAULT_VARIANT), d.coldBurst);
  for (const level of LEVELS)
    rows.set(dhLabel('(d)', DEFAULT_VARIANT, level), d.levels.get(level) as Figures);
  rows.set(againLabel('(d)', DEFAULT_VARIANT), d.again);
  const paired = d.lambdaSdk as NonNullable<DockhandFigures['lambdaSdk']>;
  rows.set(LAMBDA_LABEL, paired.sdk);
  rows.set(OWN_LABEL, paired.own);
  const f = await dockhand(TUNED_VARIANT, false);
  rows.set(burstLabel('(f)', TUNED_VARIANT), f.coldBurst);
  for (const level of LEVELS) rows.set(dhLabel('(f)', TUNED_VARIANT, level), f.levels.get(level) as Figures);
  rows.set(againLabel('(f)', TUNED_VARIANT), f.again);

  console.log(`\n${runTable(rows)}`);
  const cpu = new Map([...d.cpu].map(([level, split]) => [cpuLabel(level), split]));
  cpu.set(AGAIN_CPU, d.cpuAgain);
  console.log(`\n${cpuTable(new Map([...cpu].map(([k, v]) => [k, [v]])), (xs) => ms(xs[0] ?? 0))}`);
  const ratios: Record<string, number> = {};
  for (const level of LEVELS) {
    const c = (raw.get(level) as Figures).p50;
    ratios[`(d)/(c) p50, ${levelLabel(level)}`] = (d.levels.get(level) as Figures).p50 / c;
    ratios[`(f)/(c) p50, ${levelLabel(level)}`] = (f.levels.get(level) as Figures).p50 / c;
  }
  const naiveP50 = (rows.get(NAIVE_LABEL) as Figures).p50;
  ratios[FASTER] = naiveP50 / (d.levels.get(1) as Figures).p50;
  ratios['(a)/(f) p50 sequential'] = naiveP50 / (f.levels.get(1) as Figures).p50;
  ratios[LAMBDA_RATIO] = paired.sdk.p50 / paired.own.p50;
  console.log('');
  for (const [k, v] of Object.entries(ratios)) console.log(`- ${k}: ${v.toFixed(2)}`);
  const w = d.warm as NonNullable<DockhandFigures['warm']>;
  const warmShare = w.warm / w.calls;
  console.log(
    `- (e) warm hits: ${w.warm}/${w.calls} calls answered coldStart: false (${(warmShare * 100).toFixed(1)}%), ` +
      `${WARM_FUNCTIONS} functions, POOL_MIN_IDLE=${DEFAULTS.docker.poolMinIdle} (default)`,
  );

  for (const [label, fig] of rows) shoutFailures(`run ${run}, ${label}`, fig);
  shoutFailures(`run ${run}, (e) warm hits`, { calls: w.calls, failures: w.failures });
  const failures = mergeFailures([...[...rows.values()].map((x) => x.failures), w.failures]);
  return { cpu, rows, ratios, warmShare, failures };
}

await runBench('bench:functions', async () => {
  console.log(
    `# bench:functions — no-op node20 function, 128 MB, ${RUNS} runs (min / median / max)\n\n` +
      `Dockhand side: \`node scripts/dockhand.js all\` as a separate process, client over loopback ` +
      `(undici Pool). npm start defaults: ${DEFAULTS_DESCRIPTION}: POOL_MIN_IDLE=${DEFAULTS.docker.poolMinIdle}, POOL_MAX=${DEFAULTS.functions.poolMax}, ` +
      `FUNCTIONS_CONCURRENCY=${DEFAULTS.functions.concurrency}; the function deployed as in the README ` +
      `(its concurrency left to the API default). Before the levels of (d) and (f), a cold burst of ` +
      `${COLD_BURST} calls at concurrency 32 makes the containers; it is reported on its own row.`,
  );
  const runs: RunResult[] = [];
  for (let run = 1; run <= RUNS; run++) runs.push(await oneRun(run));

  console.log(`\n## Summary over ${RUNS} runs: min / median / max\n`);
  console.log(summaryTable(runs.map((r) => r.rows)));
  console.log(
    `\nWhere the CPU goes, npm start defaults: CPU ms per call by process (every process on the machine, from /proc; ` +
      `server = the Dockhand process, client = this bench), min / median / max\n`,
  );
  const cpuRows = new Map<string, Record<string, number>[]>();
  for (const r of runs) for (const [k, v] of r.cpu) cpuRows.set(k, [...(cpuRows.get(k) ?? []), v]);
  console.log(cpuTable(cpuRows, (xs) => spread(xs)));
  console.log('');
  for (const key of Object.keys(runs[0]?.ratios ?? {})) {
    console.log(`- ${key}: ${spread(runs.map((r) => r.ratios[key] as number))}`);
  }
  console.log(
    `- (e) warm hits (coldStart: false), ${WARM_CALLS} calls over ${WARM_FUNCTIONS} functions: ` +
      `${spread(
        runs.map((r) => r.warmShare * 100),
        (x) => `${x.toFixed(1)}%`,
      )}`,
  );
  // Goals on npm start's defaults, from the medians over the runs.
  const med = (label: string, pick: (f: Figures) => number) =>
    median(runs.map((r) => pick(r.rows.get(label) as Figures)));
  // Issue 7's goals, as it states them, on the medians of npm start's defaults.
  const seq = dhLabel('(d)', DEFAULT_VARIANT, 1);
  const seqP50 = med(seq, (f) => f.p50);
  const seqP99 = med(seq, (f) => f.p99);
  const again = againLabel('(d)', DEFAULT_VARIANT);
  const againP50 = med(again, (f) => f.p50);
  const againP99 = med(again, (f) => f.p99);
  const againOverRaw = median(
    runs.map((r) => (r.rows.get(again) as Figures).p50 / (r.rows.get(rawLabel(1)) as Figures).p50),
  );
  const overRaw = median(runs.map((r) => r.ratios[`(d)/(c) p50, ${levelLabel(1)}`] as number));
  const faster = median(runs.map((r) => r.ratios[FASTER] as number));
  const warmShare = median(runs.map((r) => r.warmShare));
  const at32Label = dhLabel('(d)', DEFAULT_VARIANT, 32);
  const at32 = med(at32Label, (f) => f.perSecond);
  const failedAt32 = runs.reduce((n, r) => n + failedCount(r.rows.get(at32Label) as Figures), 0);
  console.log('');
  // Judged on the first sequential level (a fresh server); the later one is shown beside it.
  const later = (x: string) => ` (again after the levels: ${x})`;
  goal(
    '(d) sequential p50 ≤ 2.0 ms',
    `${seqP50.toFixed(2)} ms${later(`${againP50.toFixed(2)} ms`)}`,
    seqP50 <= 2,
  );
  goal(
    '(d) sequential p50 ≤ 2 × raw BullMQ (c)',
    `${overRaw.toFixed(2)}×${later(`${againOverRaw.toFixed(2)}×`)}`,
    overRaw <= 2,
  );
  goal(
    '(d) sequential p99 ≤ 6 ms',
    `${seqP99.toFixed(2)} ms${later(`${againP99.toFixed(2)} ms`)}`,
    seqP99 <= 6,
  );
  goal('(a)/(d) at p50 ≥ 150×', `${faster.toFixed(0)}×`, faster >= 150);
  goal(
    '(d) at concurrency 32 ≥ 1,500 invocations/s, every call succeeding',
    `${at32.toFixed(0)}/s, ${failedAt32} failed`,
    at32 >= 1500 && failedAt32 === 0,
  );
  const lambdaRatio = median(runs.map((r) => r.ratios[LAMBDA_RATIO] as number));
  goal(
    "(g) Lambda SDK Invoke p50 ≤ 1.5 × (g') own route p50",
    `${lambdaRatio.toFixed(2)}×`,
    lambdaRatio <= 1.5,
  );
  goal('(e) warm hits ≥ 99%', `${(warmShare * 100).toFixed(1)}%`, warmShare >= 0.99);
  const total = mergeFailures(runs.map((r) => r.failures));
  const failed = Object.values(total).reduce((a, b) => a + b, 0);
  console.log(
    failed === 0
      ? '\nEvery call succeeded.'
      : `\n!!! ${failed} CALLS FAILED over ${RUNS} runs: ${Object.entries(total)
          .map(([k, n]) => `${k} ×${n}`)
          .join(', ')} — every call should succeed !!!\nFirst message of each cause:\n${failureMessages()}`,
  );
});
