// npm run bench:exec — what a user of `npm start` gets from a trivial exec request (issue 10):
// `POST /exec?wait=true` with {container: {image, command: ["/usr/bin/true"]}} and the bearer
// key, timed from the client to the HTTP answer, beside plain `docker run --rm` of the same
// image and command, in one run. The image is FROM scratch with this machine's /usr/bin/true.
// BENCH_RUNS runs (default 3), each on fresh servers; per-run tables, then min / median / max.
//   baseline: `docker run --rm --network none IMAGE /usr/bin/true` (the CLI, to its exit)
//   cold:     a new tag of the same image for every call, so no container of it is waiting
//   paced:    the warm image, each call sent once the server's refill has finished
//   sequential: right after each paced call, BENCH_EXEC_BURST more calls to the same image,
//             each sent as soon as the previous one answered (what a user's loop sends)
// The three kinds go in a random order in each round, and before each one the bench waits
// until the server's warm pool is settled (every warm container it should keep is running and
// nothing else is there), so no kind pays for another's background work. The server process
// has npm start's defaults (auth on, rate limit on, LOG_LEVEL=info, EXEC_WARM_PER_IMAGE=1,
// EXEC_RECENT_IMAGES=4, EXEC_CONCURRENCY=4); then a tuned server, labelled, with the image
// pinned warm and two containers per image (warm kinds and baseline only).
// Env: BENCH_RUNS (3), BENCH_EXEC_CALLS (rounds per run on defaults, 40), BENCH_EXEC_BURST (4),
//      BENCH_EXEC_TUNED_CALLS (rounds on the tuned server, 20), BENCH_DEADLINE_SECONDS (900),
//      BENCH_KEEP_LOGS (keep the servers' logs).
import { execFileSync, spawn } from 'node:child_process';
import { availableParallelism, hostname, loadavg } from 'node:os';
import path from 'node:path';
import { coerceError, errorCode } from '../core/errors.ts';
import { KIND_LABEL, OWNER_LABEL } from '../runtimes/docker-sandbox.ts';
import { EXEC_KIND } from '../runtimes/exec-runner.ts';
import { buildLocalImage } from '../test/helpers/local-images.ts';
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
  goal,
  median,
  mergeFailures,
  ms,
  RUN_ID,
  RUNS,
  runBench,
  type Server,
  shoutFailures,
  spread,
  startServer,
  table,
  type Variant,
} from './bench-kit.ts';

const ROUNDS = envInt('BENCH_EXEC_CALLS', 40);
const BURST = envInt('BENCH_EXEC_BURST', 4);
const TUNED_ROUNDS = envInt('BENCH_EXEC_TUNED_CALLS', 20);
const REPO = 'dockhand-bench-true';
/** How long the warm pool may take to settle before a call goes ahead anyway (counted). */
const SETTLE_MS = 30_000;

const TUNED_WARM_PER_IMAGE = 2;
const tunedVariant = (image: string): Variant => ({
  label: `tuned: EXEC_WARM_IMAGES=${image}, EXEC_WARM_PER_IMAGE=${TUNED_WARM_PER_IMAGE}`,
  env: { EXEC_WARM_IMAGES: image, EXEC_WARM_PER_IMAGE: String(TUNED_WARM_PER_IMAGE) },
});

// --- samples -----------------------------------------------------------------------------

/** One kind's calls in one run: latencies of the successful ones, failures by cause, warm answers. */
class Sample {
  readonly latencies: number[] = [];
  readonly failures: Record<string, number> = {};
  calls = 0;
  warm = 0;

  async time(call: () => Promise<{ failed?: string; warm?: boolean }>): Promise<void> {
    this.calls++;
    const t0 = performance.now();
    let out: { failed?: string; warm?: boolean };
    try {
      out = await call();
    } catch (err) {
      const e = coerceError(err);
      out = { failed: failure(errorCode(err) ?? e.name, e.message) };
    }
    const elapsed = performance.now() - t0;
    if (out.failed !== undefined) {
      this.failures[out.failed] = (this.failures[out.failed] ?? 0) + 1;
      return;
    }
    this.latencies.push(elapsed);
    if (out.warm) this.warm++;
  }

  figures(): Figures & { warmShare: number } {
    // perSecond is meaningless for interleaved calls: 0.
    const f = figures(this.latencies, 0, this.calls, this.failures);
    return { ...f, warmShare: this.latencies.length ? this.warm / this.latencies.length : 0 };
  }
}

type Row = ReturnType<Sample['figures']> & { ratio: number; hasWarm: boolean };

// --- the three kinds of call ---------------------------------------------------------------

/** The baseline: the docker CLI, as a user would type it (plus the bench's label, for cleanup). */
function dockerRun(image: string): Promise<{ failed?: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      'docker',
      ['run', '--rm', '--network', 'none', '--label', `${BENCH_LABEL}=${RUN_ID}`, image, '/usr/bin/true'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.once('error', (err) => resolve({ failed: failure('docker run: spawn', err.message) }));
    child.once('exit', (code) =>
      resolve(code === 0 ? {} : { failed: failure(`docker run: exit ${code}`, stderr.trim()) }),
    );
  });
}

function execClient(server: Server) {
  const api = apiClient(server, 1);
  return {
    async exec(image: string): Promise<{ failed?: string; warm?: boolean }> {
      const res = await api.call('POST', '/exec?wait=true', {
        container: { image, command: ['/usr/bin/true'] },
      });
      if (res.status !== 200)
        return { failed: failure(`${res.status} ${String(res.json.error)}`, res.json.message) };
      const result = res.json.result as
        | { exit_code?: number | null; metadata?: { warm?: boolean } }
        | undefined;
      if (res.json.success !== true || result?.exit_code !== 0)
        return { failed: failure(`200 ${String(res.json.status)}`, JSON.stringify(res.json).slice(0, 300)) };
      return { warm: result.metadata?.warm === true };
    },
    close: api.close,
  };
}

// --- the server's warm pool, seen from outside ---------------------------------------------

/**
 * What the server's exec runner should hold once its refills are done, from the images the
 * bench has used (as docs/exec-runtime.md describes the pool): EXEC_WARM_PER_IMAGE containers
 * for each EXEC_WARM_IMAGES image and each of the EXEC_RECENT_IMAGES most recently used others.
 */
class PoolModel {
  readonly #recent: string[] = [];
  constructor(
    readonly pinned: string[],
    readonly perImage: number,
    readonly recentImages: number,
  ) {}

  use(image: string): void {
    if (this.pinned.includes(image)) return;
    const at = this.#recent.indexOf(image);
    if (at >= 0) this.#recent.splice(at, 1);
    this.#recent.push(image);
    if (this.#recent.length > this.recentImages) this.#recent.shift();
  }

  expected(): number {
    return this.perImage * (this.pinned.length + this.#recent.length);
  }
}

/**
 * Waits until the server's exec containers (its owner label, kind exec) are exactly the warm
 * ones it should keep, all running: no container being made, used or removed. Polled through
 * Docker with a backoff from 5 ms to 100 ms; false when it did not settle within SETTLE_MS.
 */
async function settle(server: Server, pool: PoolModel): Promise<boolean> {
  const labels = [`${OWNER_LABEL}=${hostname()}/${server.pid}`, `${KIND_LABEL}=${EXEC_KIND}`];
  const until = performance.now() + SETTLE_MS;
  let delay = 5;
  while (performance.now() < until) {
    const found = await docker.listContainers({ all: true, filters: { label: labels } });
    if (found.length === pool.expected() && found.every((c) => c.State === 'running')) return true;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(100, delay * 1.5);
  }
  return false;
}

function shuffle<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [xs[i], xs[j]] = [xs[j] as T, xs[i] as T];
  }
  return xs;
}

// --- one server ----------------------------------------------------------------------------

interface ServerResult {
  rows: Map<string, Row>;
  unsettled: number;
  seconds: number;
}

const BASELINE = 'docker run --rm --network none IMAGE /usr/bin/true';
const rowLabel = (kind: 'baseline' | 'cold' | 'paced' | 'sequential', v: Variant) => {
  switch (kind) {
    case 'baseline':
      return `${BASELINE} (beside ${v.label})`;
    case 'cold':
      return `Dockhand, cold image (a new tag each call), ${v.label}`;
    case 'paced':
      return `Dockhand, warm image, paced (each call after the refill), ${v.label}`;
    case 'sequential':
      return `Dockhand, warm image, sequential (${BURST} calls back to back after each paced one), ${v.label}`;
  }
};

/** One server of the variant: `rounds` rounds of the kinds in a random order, settled before each. */
async function onServer(
  variant: Variant,
  image: string,
  rounds: number,
  withCold: boolean,
  run: number,
): Promise<ServerResult> {
  const t0 = performance.now();
  const server = await startServer(variant);
  const config = DEFAULTS.exec;
  const pinned = variant.env.EXEC_WARM_IMAGES?.split(',') ?? config.warmImages;
  const perImage = Number(variant.env.EXEC_WARM_PER_IMAGE ?? config.warmPerImage);
  const pool = new PoolModel(pinned, perImage, Number(variant.env.EXEC_RECENT_IMAGES ?? config.recentImages));
  const client = execClient(server);

  // A tag per cold call, made before the run (an untag only, later: the image stays).
  const tags = withCold ? Array.from({ length: rounds }, (_, i) => `${REPO}:${RUN_ID}-${run}-${i}`) : [];
  const untag = defer(() =>
    Promise.all(
      tags.map((t) =>
        docker
          .getImage(t)
          .remove()
          .catch(() => {}),
      ),
    ),
  );
  for (const t of tags) {
    const [repo, tag] = t.split(':') as [string, string];
    await docker.getImage(image).tag({ repo, tag });
  }

  // Warm-up, untimed: the server's first requests, the image in the page cache, the pool filled.
  for (let i = 0; i < 2; i++) {
    pool.use(image);
    const out = await client.exec(image);
    if (out.failed) throw new Error(`the warm-up exec request failed: ${out.failed}\n${failureMessages()}`);
  }
  const first = await dockerRun(image);
  if (first.failed) throw new Error(`the warm-up docker run failed: ${first.failed}\n${failureMessages()}`);

  const samples = {
    baseline: new Sample(),
    cold: new Sample(),
    paced: new Sample(),
    sequential: new Sample(),
  };
  let unsettled = 0;
  const settled = async () => {
    if (!(await settle(server, pool))) unsettled++;
  };
  const kinds = withCold ? (['baseline', 'cold', 'warm'] as const) : (['baseline', 'warm'] as const);
  for (let i = 0; i < rounds; i++) {
    const order = shuffle([...kinds]);
    for (const kind of order) {
      await settled();
      if (kind === 'baseline') await samples.baseline.time(() => dockerRun(image));
      else if (kind === 'cold') {
        const tag = tags[i] as string;
        pool.use(tag);
        await samples.cold.time(() => client.exec(tag));
      } else {
        pool.use(image);
        await samples.paced.time(() => client.exec(image));
        for (let k = 0; k < BURST; k++) await samples.sequential.time(() => client.exec(image));
      }
    }
  }

  await client.close();
  const log = await server.stop();
  await untag();
  console.log(`${variant.label}: ready in ${server.readySeconds.toFixed(1)} s; ${describeLog(log)}`);

  const base = samples.baseline.figures();
  const rows = new Map<string, Row>();
  const add = (kind: keyof typeof samples, hasWarm: boolean) => {
    if (samples[kind].calls === 0) return;
    const f = samples[kind].figures();
    rows.set(rowLabel(kind, variant), { ...f, ratio: base.p50 > 0 ? f.p50 / base.p50 : 0, hasWarm });
  };
  add('baseline', false);
  add('paced', true);
  add('sequential', true);
  add('cold', true);
  return { rows, unsettled, seconds: (performance.now() - t0) / 1000 };
}

// --- tables ----------------------------------------------------------------------------------

const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
const ratio = (x: number) => `${x.toFixed(2)}×`;
const failedCell = (n: number, f: Record<string, number>) =>
  n === 0
    ? '0'
    : `**${n}** (${Object.entries(f)
        .map(([k, c]) => `${k} ×${c}`)
        .join(', ')})`;

function runTable(rows: Map<string, Row>): string {
  return table(
    ['path', 'calls', 'p50 ms', 'p99 ms', 'p50 / docker run', 'warm', 'failed'],
    [...rows].map(([label, r]) => [
      label,
      String(r.calls),
      ms(r.p50),
      ms(r.p99),
      label.startsWith(BASELINE) ? '–' : ratio(r.ratio),
      r.hasWarm ? pct(r.warmShare) : '–',
      failedCell(failedCount(r), r.failures),
    ]),
  );
}

function summaryTable(runs: Array<Map<string, Row>>): string {
  const labels = [...new Set(runs.flatMap((r) => [...r.keys()]))];
  return table(
    ['path', 'p50 ms', 'p99 ms', 'p50 / docker run', 'warm', 'failed'],
    labels.map((label) => {
      const rs = runs.flatMap((r) => (r.has(label) ? [r.get(label) as Row] : []));
      const failed = rs.reduce((a, r) => a + failedCount(r), 0);
      return [
        label,
        spread(rs.map((r) => r.p50)),
        spread(rs.map((r) => r.p99)),
        label.startsWith(BASELINE) ? '–' : spread(rs.map((r) => r.ratio)),
        rs[0]?.hasWarm
          ? spread(
              rs.map((r) => r.warmShare * 100),
              (x) => `${x.toFixed(0)}%`,
            )
          : '–',
        failedCell(failed, mergeFailures(rs.map((r) => r.failures))),
      ];
    }),
  );
}

const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(', ');

// --- main ----------------------------------------------------------------------------------

await runBench('bench:exec', async () => {
  // What `npm start` runs first for exec (scripts/prepare.sh): dh-init, rebuilt only when stale.
  execFileSync('bash', [path.join(import.meta.dirname, 'build-exec-init.sh')], { stdio: 'inherit' });
  // Cached between runs like the tests' images (label dockhand.test-image); only its extra tags go.
  const image = buildLocalImage({ tag: `${REPO}:local`, binaries: ['/usr/bin/true'] });
  const tuned = tunedVariant(image);
  console.log(
    `# bench:exec — POST /exec?wait=true {container: {image: ${image}, command: ["/usr/bin/true"]}}, ` +
      `${RUNS} runs (min / median / max)\n\n` +
      `Dockhand side: \`node scripts/dockhand.js all\` as a separate process, client over loopback ` +
      `(undici Pool, one connection), timed to the HTTP answer. npm start defaults: ${DEFAULTS_DESCRIPTION}: ` +
      `EXEC_WARM_PER_IMAGE=${DEFAULTS.exec.warmPerImage}, EXEC_RECENT_IMAGES=${DEFAULTS.exec.recentImages}, ` +
      `EXEC_WARM_IMAGES empty, EXEC_CONCURRENCY=${DEFAULTS.exec.concurrency}. Per run on the defaults: ` +
      `${ROUNDS} rounds of {docker run, cold call, paced call + ${BURST} sequential calls} in a random ` +
      `order, the warm pool settled before each; then ${TUNED_ROUNDS} rounds of {docker run, paced + ` +
      `${BURST} sequential} on a fresh server, ${tuned.label}. p99 of ${ROUNDS} calls is their slowest.\n\n` +
      `Load average (1, 5, 15 min) at the start: ${load()} on ${availableParallelism()} cores.`,
  );

  const runs: Array<Map<string, Row>> = [];
  let unsettled = 0;
  for (let run = 1; run <= RUNS; run++) {
    console.log(`\n## Run ${run} of ${RUNS} (load average ${load()})\n`);
    const d = await onServer(DEFAULT_VARIANT, image, ROUNDS, true, run);
    const t = await onServer(tuned, image, TUNED_ROUNDS, false, run);
    const rows = new Map([...d.rows, ...t.rows]);
    unsettled += d.unsettled + t.unsettled;
    console.log(
      `\n${runTable(rows)}\n\n` +
        `defaults ${d.seconds.toFixed(0)} s, tuned ${t.seconds.toFixed(0)} s; ` +
        `pool not settled within ${SETTLE_MS / 1000} s before a call: ${d.unsettled + t.unsettled}`,
    );
    for (const [label, r] of rows) shoutFailures(`run ${run}, ${label}`, r);
    runs.push(rows);
  }

  console.log(`\n## Summary over ${RUNS} runs: min / median / max (load average at the end ${load()})\n`);
  console.log(summaryTable(runs));
  console.log('');
  const medianRatio = (label: string) => median(runs.map((r) => (r.get(label) as Row).ratio));
  const seq = medianRatio(rowLabel('sequential', DEFAULT_VARIANT));
  const paced = medianRatio(rowLabel('paced', DEFAULT_VARIANT));
  const cold = medianRatio(rowLabel('cold', DEFAULT_VARIANT));
  goal('warm image p50 ≤ 0.3 × docker run, sequential calls (npm start defaults)', ratio(seq), seq <= 0.3);
  goal(
    'warm image p50 ≤ 0.3 × docker run, paced so the refill finished (npm start defaults)',
    ratio(paced),
    paced <= 0.3,
  );
  goal('cold image p50 ≤ 1.2 × docker run (npm start defaults)', ratio(cold), cold <= 1.2);
  if (unsettled > 0)
    console.log(
      `\n!!! the warm pool did not settle within ${SETTLE_MS / 1000} s before ${unsettled} calls !!!`,
    );
  const total = mergeFailures(runs.flatMap((r) => [...r.values()].map((x) => x.failures)));
  const failed = Object.values(total).reduce((a, b) => a + b, 0);
  console.log(
    failed === 0
      ? '\nEvery call succeeded.'
      : `\n!!! ${failed} CALLS FAILED over ${RUNS} runs — every call should succeed !!!\n` +
          `First message of each cause:\n${failureMessages()}`,
  );
});
