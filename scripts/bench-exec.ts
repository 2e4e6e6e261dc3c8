// npm run bench:exec — a trivial exec command (/usr/bin/true in a FROM-scratch image made from
// this machine's binary) three ways, interleaved so a busy machine slows all alike:
//   docker run --rm IMAGE /usr/bin/true   (the CLI, to its exit: includes the removal)
//   cold: ExecRunner.acquire + run, nothing warm (create, attach, start, run spec, exit)
//   warm: the same with a container waiting (EXEC_WARM_PER_IMAGE=1, refilled between calls)
// Times are to the outcome; release (container and workspace removal) is shown apart, since
// the processor answers first. p50 and p90 of BENCH_EXEC_RUNS calls each (default 30).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { loadConfig } from '../core/config.ts';
import { CgroupProfiler } from '../runtimes/cgroup-profiler.ts';
import { DEFAULT_INIT_PATH, ExecRunner } from '../runtimes/exec-runner.ts';
import { buildLocalImage } from '../test/helpers/local-images.ts';

const RUNS = Number(process.env.BENCH_EXEC_RUNS ?? 30);
const image = buildLocalImage({ tag: 'dockhand-bench-true:local', binaries: ['/usr/bin/true'] });
const docker = new Docker();
const dataDir = mkdtempSync(path.join(tmpdir(), 'dockhand-bench-exec-'));
const owner = `${hostname()}/${process.pid}`;

const dockerRun = () =>
  new Promise<number>((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn('docker', ['run', '--rm', '--network', 'none', image, '/usr/bin/true'], {
      stdio: 'ignore',
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(performance.now() - t0) : reject(new Error(`docker run exit ${code}`)),
    );
  });

function makeRunner(warmPerImage: number) {
  const config = loadConfig({
    DATA_DIR: dataDir,
    EXEC_WARM_IMAGES: warmPerImage > 0 ? image : '',
    EXEC_WARM_PER_IMAGE: String(warmPerImage),
    EXEC_RECENT_IMAGES: '0',
  });
  return new ExecRunner({
    docker,
    owner,
    config: config.exec,
    initPath: DEFAULT_INIT_PATH,
    profiler: new CgroupProfiler(),
  });
}

async function execOnce(runner: ExecRunner, expectWarm: boolean) {
  if (expectWarm) {
    const deadline = Date.now() + 30_000;
    while ((runner.stats().images[image]?.idle ?? 0) < 1) {
      if (Date.now() > deadline) throw new Error('the warm container never came');
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const t0 = performance.now();
  const slot = await runner.acquire({ image, network: 'none', memoryMb: 512, cpus: 1 });
  const out = await slot.run({
    command: ['/usr/bin/true'],
    env: {},
    workingDir: '/workspace',
    timeoutMs: 30_000,
  });
  const ms = performance.now() - t0;
  const t1 = performance.now();
  await slot.release();
  const releaseMs = performance.now() - t1;
  if (out.exitCode !== 0 || out.warm !== expectWarm)
    throw new Error(`unexpected outcome ${JSON.stringify(out)}`);
  return { ms, releaseMs };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
};
const fmt = (xs: number[]) => `p50 ${pct(xs, 50).toFixed(0)} ms, p90 ${pct(xs, 90).toFixed(0)} ms`;

try {
  for (const [label, warmPerImage] of [
    ['cold', 0],
    ['warm', 1],
  ] as const) {
    const runner = makeRunner(warmPerImage);
    await runner.start();
    const ours: number[] = [];
    const release: number[] = [];
    const cli: number[] = [];
    await dockerRun(); // the image's layers in the page cache for both
    for (let i = 0; i < RUNS; i++) {
      const order = Math.random() < 0.5;
      if (order) cli.push(await dockerRun());
      const r = await execOnce(runner, warmPerImage > 0);
      ours.push(r.ms);
      release.push(r.releaseMs);
      if (!order) cli.push(await dockerRun());
    }
    await runner.close();
    const ratio = pct(ours, 50) / pct(cli, 50);
    console.log(
      `${label}: ${fmt(ours)} (release ${fmt(release)}); docker run --rm: ${fmt(cli)}; p50 ratio ${ratio.toFixed(2)}`,
    );
  }
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
