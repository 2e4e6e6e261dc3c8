import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { hostname } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import Docker from 'dockerode';
import t, { type Test } from 'tap';
import { ImageUnavailableError, ValidationError } from '../../core/errors.ts';
import { CgroupProfiler } from '../../runtimes/cgroup-profiler.ts';
import { DockerSandboxDriver } from '../../runtimes/docker-sandbox.ts';
import {
  EXEC_KIND,
  ExecRunner,
  type ExecRunOutcome,
  type ExecRunSpec,
  type ExecSlotSpec,
} from '../../runtimes/exec-runner.ts';
import { testConfig } from '../helpers/env.ts';
import { ensureExecInit } from '../helpers/exec-init.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { coreutilsImage, entrypointImage } from '../helpers/local-images.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

leakCheck(t);

// Issue 10: the container layer of exec requests, on a real engine with images made here
// (FROM scratch: no shell in any of them, so dh-init is all there is to start a command).
const docker = new Docker();
const owner = `${hostname()}/${process.pid}`;
const initPath = ensureExecInit();
const PYTHON = process.env.RUNTIME_IMAGE_PYTHON3 ?? 'dockhand-runtime-python3:local';
const COREUTILS = coreutilsImage();
const ENTRYPOINT = entrypointImage();
const MiB = 1024 * 1024;

async function startRunner(t: Test, env: Record<string, string> = {}) {
  const config = testConfig(t, env);
  const runner = new ExecRunner({
    docker,
    owner,
    config: config.exec,
    initPath,
    profiler: new CgroupProfiler(),
  });
  await runner.start();
  t.teardown(() => runner.close());
  return { runner, config };
}

const slotSpec = (image: string, more: Partial<ExecSlotSpec> = {}): ExecSlotSpec => ({
  image,
  network: 'none',
  memoryMb: 256,
  cpus: 1,
  ...more,
});

const runSpec = (command: string[] | undefined, more: Partial<ExecRunSpec> = {}): ExecRunSpec => ({
  command,
  env: {},
  workingDir: '/workspace',
  timeoutMs: 60_000,
  ...more,
});

const py = (code: string, more: Partial<ExecRunSpec> = {}) => runSpec(['python3', '-c', code], more);

async function runOnce(runner: ExecRunner, slot: ExecSlotSpec, run: ExecRunSpec): Promise<ExecRunOutcome> {
  const s = await runner.acquire(slot);
  try {
    return await s.run(run);
  } finally {
    await s.release();
  }
}

const gone = (id: string) =>
  docker
    .getContainer(id)
    .inspect()
    .then(
      () => false,
      (err: { statusCode?: number }) => err.statusCode === 404,
    );

t.test('exit code, stdout and stderr interleaved, live output, cgroup figures', async (t) => {
  const { runner } = await startRunner(t);
  const live: string[] = [];
  const outcome = await runOnce(
    runner,
    slotSpec(PYTHON),
    py(
      [
        'import sys',
        'x = bytearray(96 * 1024 * 1024)',
        'print("to stdout", flush=True)',
        'sys.stderr.write("to stderr\\n"); sys.stderr.flush()',
        'sys.exit(3)',
      ].join('\n'),
      { onOutput: (chunk) => live.push(chunk) },
    ),
  );
  t.equal(outcome.exitCode, 3);
  // The engine copies the two pipes apart: within a stream order holds, across them it may not.
  t.same(outcome.output.split('\n').sort(), ['', 'to stderr', 'to stdout']);
  t.equal(live.join(''), outcome.output, 'live chunks add up to the output');
  t.equal(outcome.error, undefined);
  t.equal(outcome.truncated, false);
  t.equal(outcome.timedOut || outcome.cancelled || outcome.oomKilled, false);
  t.ok((outcome.peakMemoryMb ?? 0) >= 96, `peak memory from the cgroup (${outcome.peakMemoryMb} MiB)`);
  t.ok((outcome.cpuPercent ?? -1) >= 0, `cpu percent (${outcome.cpuPercent})`);
  t.ok(outcome.durationMs > 0);
});

t.test("the image's own ENTRYPOINT and CMD, as docker run uses them", async (t) => {
  const { runner } = await startRunner(t);
  const cmd = await runOnce(runner, slotSpec(COREUTILS), runSpec(undefined));
  t.equal(cmd.output, 'default cmd\n', 'no command: the image CMD');
  t.equal((await runOnce(runner, slotSpec(ENTRYPOINT), runSpec(undefined))).output, 'entrypoint from cmd\n');
  t.equal(
    (await runOnce(runner, slotSpec(ENTRYPOINT), runSpec(['given']))).output,
    'entrypoint given\n',
    'a command goes after the ENTRYPOINT',
  );
  t.equal(
    (await runOnce(runner, slotSpec(ENTRYPOINT), runSpec(['/usr/bin/echo', 'own'], { entrypoint: [] })))
      .output,
    'own\n',
    'an empty entrypoint clears it',
  );
});

t.test('environment over the image, working directory made when missing', async (t) => {
  const { runner } = await startRunner(t);
  const outcome = await runOnce(
    runner,
    slotSpec(PYTHON),
    py('import os; print(os.getcwd(), os.environ["GREETING"], os.environ["LANG"])', {
      env: { GREETING: 'hello world=1' },
      workingDir: '/workspace/output/deep/dir',
    }),
  );
  t.equal(outcome.output, '/workspace/output/deep/dir hello world=1 C.UTF-8\n');
  const bad = await runOnce(runner, slotSpec(PYTHON), py('pass', { workingDir: '/nowhere/here' }));
  t.equal(bad.exitCode, 126);
  t.match(bad.error, /^Cannot use the working directory \/nowhere\/here: .+\.$/);
});

t.test('a command that is not there: 127 and one sentence (no shell in these images)', async (t) => {
  const { runner } = await startRunner(t);
  const missing = await runOnce(runner, slotSpec(PYTHON), runSpec(['no-such-program', 'x']));
  t.equal(missing.exitCode, 127);
  t.equal(missing.error, 'Cannot run no-such-program: No such file or directory.');
  t.equal(missing.output, '');
  const shell = await runOnce(runner, slotSpec(COREUTILS), runSpec(['sh', '-c', 'echo hi']));
  t.equal(shell.exitCode, 127, 'no /bin/sh: dh-init needed none');
  const notExec = await runOnce(runner, slotSpec(PYTHON), runSpec(['/workspace/input']));
  t.equal(notExec.exitCode, 126);
  t.match(notExec.error, /^Cannot run \/workspace\/input: Permission denied\.$/);
});

t.test('a forged control line is output like any other; the exit code is the engine’s', async (t) => {
  const { runner } = await startRunner(t);
  const forged = `\\x1eDH:${'0'.repeat(32)}:error:forged`;
  const outcome = await runOnce(
    runner,
    slotSpec(PYTHON),
    py(
      [
        'import sys',
        `sys.stderr.write("${forged}\\n"); sys.stderr.flush()`,
        'try:\n  open("/proc/1/mem", "rb").read(1); print("read init memory")\nexcept OSError as e:\n  print("init memory:", e.errno)',
        'sys.exit(0)',
      ].join('\n'),
    ),
  );
  t.equal(outcome.exitCode, 0);
  t.equal(outcome.error, undefined);
  t.ok(outcome.output.includes(`\x1eDH:${'0'.repeat(32)}:error:forged\n`), 'kept as output');
  t.match(outcome.output, /init memory: 13\n/, 'the nonce cannot be read out of dh-init');
});

t.test('hardening: uid 65534, read-only root, writable /tmp and workspace, input read-only', async (t) => {
  const { runner } = await startRunner(t);
  const slot = await runner.acquire(slotSpec(PYTHON));
  t.teardown(() => slot.release());
  writeFileSync(path.join(slot.workspace, 'input', 'data.txt'), 'input data');
  writeFileSync(path.join(slot.workspace, 'config', 'config.json'), '{"a":1}');
  const outcome = await slot.run(
    py(
      [
        'import os',
        'def attempt(what, fn):',
        '  try:\n    fn(); print(what, "ok")',
        '  except OSError as e:\n    print(what, e.errno)',
        'print("ids", os.getuid(), os.getgid())',
        'print("input", open("/workspace/input/data.txt").read())',
        'print("config", open("/workspace/config/config.json").read())',
        'attempt("etc", lambda: open("/etc/planted", "w"))',
        'attempt("tmp", lambda: open("/tmp/x", "w").write("x"))',
        'attempt("output", lambda: open("/workspace/output/result.txt", "w").write("result"))',
        'attempt("cwd", lambda: open("scratch.txt", "w").write("x"))',
        'attempt("write-input", lambda: open("/workspace/input/x", "w"))',
        'attempt("swap-output", lambda: os.rename("/workspace/output", "/workspace/elsewhere"))',
        'attempt("chmod-input", lambda: os.chmod("/workspace/input", 0o777))',
      ].join('\n'),
    ),
  );
  t.equal(outcome.exitCode, 0, outcome.output);
  const lines = outcome.output.trim().split('\n');
  t.same(lines, [
    'ids 65534 65534',
    'input input data',
    'config {"a":1}',
    'etc 30',
    'tmp ok',
    'output ok',
    'cwd ok',
    'write-input 13',
    'swap-output 1',
    'chmod-input 1',
  ]);
  t.equal(readFileSync(path.join(slot.workspace, 'output', 'result.txt'), 'utf8'), 'result');
  const info = await docker.getContainer((await runnerContainers())[0]?.Id ?? 'none').inspect();
  t.same(info.HostConfig.CapDrop, ['ALL']);
  t.same(info.HostConfig.SecurityOpt, ['no-new-privileges']);
  t.equal(info.HostConfig.ReadonlyRootfs, true);
  t.equal(info.HostConfig.NetworkMode, 'none');
  t.equal(info.HostConfig.LogConfig?.Type, 'none');
  t.equal(info.HostConfig.Memory, 256 * MiB);
  t.equal(info.HostConfig.MemorySwap, 256 * MiB);
  t.equal(info.HostConfig.NanoCpus, 1e9);
  t.ok((info.HostConfig.PidsLimit ?? 0) > 0);
});

const runnerContainers = () =>
  docker.listContainers({
    all: true,
    filters: { label: [`dockhand.owner=${owner}`, `dockhand.kind=${EXEC_KIND}`] },
  });

t.test('an operator may relax: EXEC_USER=root, EXEC_READONLY_ROOTFS=no, EXEC_PIDS_LIMIT', async (t) => {
  const { runner } = await startRunner(t, {
    EXEC_USER: 'root',
    EXEC_READONLY_ROOTFS: 'no',
    EXEC_PIDS_LIMIT: '99',
  });
  const slot = await runner.acquire(slotSpec(PYTHON));
  t.teardown(() => slot.release());
  const [c] = await runnerContainers();
  t.equal((await docker.getContainer(c?.Id ?? '').inspect()).HostConfig.PidsLimit, 99);
  const outcome = await slot.run(
    py(
      [
        'import os',
        'open("/etc/planted", "w").write("x"); print(os.getuid())',
        // dh-init is the host's one binary for every container: even root here cannot change it.
        'try:\n  open("/.dockhand/init", "r+b"); print("init writable")\nexcept OSError as e:\n  print("init", e.errno)',
        'print([l.split()[5].split(",")[0] for l in open("/proc/self/mountinfo") if l.split()[4] == "/.dockhand/init"])',
      ].join('\n'),
    ),
  );
  // ETXTBSY while it runs as PID 1, and the mount is read-only whatever runs.
  t.equal(outcome.output, "0\ninit 26\n['ro']\n");
});

t.test('pids are limited; what the command leaves running dies with it', async (t) => {
  const { runner } = await startRunner(t, { EXEC_PIDS_LIMIT: '16' });
  const bomb = await runOnce(
    runner,
    slotSpec(PYTHON),
    py(
      [
        'import os, time',
        'n = 0',
        'try:',
        '  for _ in range(200):',
        '    if os.fork() == 0:\n      time.sleep(600); os._exit(0)',
        '    n += 1',
        'except OSError as e:\n  print("forks", n, "then", e.errno)',
      ].join('\n'),
    ),
  );
  t.match(bomb.output, /^forks \d+ then 11\n$/, 'EAGAIN past EXEC_PIDS_LIMIT');
  t.ok(Number(/forks (\d+)/.exec(bomb.output)?.[1]) < 16);
  t.equal(bomb.exitCode, 0, 'the main process ended: the run ends, its sleeping children killed');
});

t.test('release never follows a symlink the command planted', async (t) => {
  const { runner } = await startRunner(t);
  const outside = tempDir(t, 'outside');
  writeFileSync(path.join(outside, 'precious'), 'keep me');
  const slot = await runner.acquire(slotSpec(PYTHON));
  // The command cannot see host paths, but it may guess them; here it is told.
  const outcome = await slot.run(
    py(
      [
        'import os',
        `os.symlink("${outside}", "/workspace/output/dir-link")`,
        `os.symlink("${outside}/precious", "/workspace/output/file-link")`,
        `os.symlink("${outside}", "/workspace/top-link")`,
      ].join('\n'),
    ),
  );
  t.equal(outcome.exitCode, 0, outcome.output);
  await slot.release();
  t.notOk(existsSync(slot.workspace));
  t.equal(readFileSync(path.join(outside, 'precious'), 'utf8'), 'keep me');
});

t.test('timeout kills (timedOut), and so does a cancel', async (t) => {
  const { runner } = await startRunner(t);
  const slept = await runOnce(runner, slotSpec(COREUTILS), runSpec(['sleep', '600'], { timeoutMs: 300 }));
  t.equal(slept.timedOut, true);
  t.equal(slept.cancelled, false);
  t.equal(slept.exitCode, 137);

  const controller = new AbortController();
  let abortedAt = 0;
  const cancelled = await runOnce(
    runner,
    slotSpec(PYTHON),
    py('import time; print("started", flush=True); time.sleep(600)', {
      timeoutMs: 600_000,
      signal: controller.signal,
      onOutput: (chunk) => {
        if (chunk.includes('started') && !abortedAt) {
          abortedAt = performance.now();
          controller.abort();
        }
      },
    }),
  );
  const afterAbort = performance.now() - abortedAt;
  t.equal(cancelled.cancelled, true);
  t.equal(cancelled.timedOut, false);
  t.equal(cancelled.exitCode, 137);
  t.equal(cancelled.output, 'started\n');
  // The command would sleep 600 s and its timeout is as long: ending at all is the kill.
  t.ok(afterAbort < 60_000, `ended ${Math.round(afterAbort)} ms after the abort`);

  const early = new AbortController();
  early.abort();
  const slot = await runner.acquire(slotSpec(COREUTILS));
  t.teardown(() => slot.release());
  const never = await slot.run(runSpec(['true'], { signal: early.signal }));
  t.same([never.cancelled, never.exitCode], [true, null], 'aborted before the run: it never starts');
  await t.rejects(runner.acquire(slotSpec(COREUTILS), early.signal), 'acquire honours an aborted signal');
});

t.test('output past EXEC_MAX_LOG_BYTES is dropped as it arrives, the command runs on', async (t) => {
  const { runner } = await startRunner(t, { EXEC_MAX_LOG_BYTES: String(64 * 1024) });
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 10);
  t.teardown(() => clearInterval(sampler));
  const outcome = await runOnce(
    runner,
    slotSpec(PYTHON),
    py(
      [
        'import sys',
        'b = b"x" * (1024 * 1024)',
        'for _ in range(512): sys.stdout.buffer.write(b)',
        'sys.stdout.flush()',
        'sys.stderr.write("finished\\n")',
      ].join('\n'),
    ),
  );
  clearInterval(sampler);
  t.equal(outcome.exitCode, 0, 'not stopped for its output');
  t.equal(outcome.truncated, true);
  t.equal(Buffer.byteLength(outcome.output), 64 * 1024);
  t.ok(/^x+$/.test(outcome.output));
  const grew = (peak - before) / MiB;
  // RSS moves with the garbage collector (Node 24 kept up to 151 MiB of released chunks where
  // Node 20 kept 53): the bound only has to tell "dropped as it came" from "held all 512 MiB".
  t.ok(grew < 256, `512 MiB went through; the worker grew by ${grew.toFixed(0)} MiB at most`);
});

t.test('memory limit: a command over it is OOM-killed', async (t) => {
  const { runner } = await startRunner(t);
  const outcome = await runOnce(
    runner,
    slotSpec(PYTHON, { memoryMb: 48 }),
    py('x = bytearray(256 * 1024 * 1024); print("survived")'),
  );
  t.equal(outcome.oomKilled, true);
  t.equal(outcome.exitCode, 137);
  t.notMatch(outcome.output, /survived/);
});

t.test('warm: prewarmed containers are taken, resized, used once, never reused', async (t) => {
  const { runner } = await startRunner(t, {
    EXEC_WARM_IMAGES: PYTHON,
    EXEC_WARM_PER_IMAGE: '1',
    EXEC_RECENT_IMAGES: '0',
    EXEC_MEMORY_MB: '512',
  });
  const seen: string[] = [];
  for (let i = 0; i < 2; i++) {
    await waitFor(() => runner.stats().images[PYTHON]?.idle === 1, { what: 'a warm container' });
    const slot = await runner.acquire(slotSpec(PYTHON, { memoryMb: 128 }));
    t.equal(slot.warm, true, `call ${i + 1} is warm`);
    t.equal(runner.stats().busy, 1);
    const outcome = await slot.run(
      py(
        [
          'import os, socket',
          'print(socket.gethostname(), os.path.exists("/tmp/mark"))',
          'open("/tmp/mark", "w").write("x"); open("/workspace/output/mark", "w").write("x")',
        ].join('\n'),
      ),
    );
    t.equal(outcome.warm, true);
    const [host, marked] = outcome.output.trim().split(' ');
    t.equal(marked, 'False', 'nothing left by an earlier execution');
    seen.push(host as string);
    const id = (await docker.listContainers({ all: true, filters: { id: [host as string] } }))[0]?.Id;
    t.ok(id, 'the container ran the command');
    t.equal((await docker.getContainer(id as string).inspect()).HostConfig.Memory, 128 * MiB, 'resized');
    await slot.release();
    t.ok(await gone(id as string), 'its container is removed');
    t.notOk(existsSync(slot.workspace), 'and its workspace');
    await slot.release();
    t.pass('release twice is fine');
  }
  t.not(seen[0], seen[1], 'two executions, two containers');
});

t.test('only EXEC_RECENT_IMAGES images stay warm; ports are always cold', async (t) => {
  const { runner } = await startRunner(t, { EXEC_WARM_PER_IMAGE: '1', EXEC_RECENT_IMAGES: '1' });
  const first = await runner.acquire(slotSpec(COREUTILS));
  t.equal(first.warm, false, 'a first use is cold');
  await first.release();
  await waitFor(() => runner.stats().images[COREUTILS]?.idle === 1, { what: 'coreutils kept warm' });
  const other = await runner.acquire(slotSpec(PYTHON));
  t.equal(other.warm, false);
  await other.release();
  await waitFor(() => runner.stats().images[PYTHON]?.idle === 1, { what: 'python kept warm' });
  t.equal(runner.stats().images[COREUTILS]?.idle ?? 0, 0, 'coreutils no longer recent: evicted');
  t.equal(runner.stats().idle, 1, 'bounded: one image × one container');
  await t.rejects(
    runner.acquire(slotSpec(PYTHON, { ports: { '8000': 18000 } })),
    ValidationError,
    'ports need a network',
  );
});

t.test('ports are published on 127.0.0.1 only', async (t) => {
  const { runner } = await startRunner(t);
  const port = await freePort();
  const slot = await runner.acquire(slotSpec(PYTHON, { network: 'bridge', ports: { '8000': port } }));
  t.teardown(() => slot.release());
  t.equal(slot.warm, false);
  writeFileSync(path.join(slot.workspace, 'input', 'hello.txt'), 'served');
  const controller = new AbortController();
  const running = slot.run(
    py(
      'import http.server, functools\n' +
        'h = functools.partial(http.server.SimpleHTTPRequestHandler, directory="/workspace/input")\n' +
        'http.server.ThreadingHTTPServer(("0.0.0.0", 8000), h).serve_forever()',
      { signal: controller.signal, timeoutMs: 120_000 },
    ),
  );
  const [c] = await runnerContainers();
  const info = await docker.getContainer(c?.Id ?? '').inspect();
  t.same(info.HostConfig.PortBindings, { '8000/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] });
  const published = info.NetworkSettings.Ports['8000/tcp'] ?? [];
  t.ok(published.length > 0 && published.every((b) => b.HostIp === '127.0.0.1'), JSON.stringify(published));
  const body = await waitFor(() => get(`http://127.0.0.1:${port}/hello.txt`), { what: 'the published port' });
  t.equal(body, 'served');
  controller.abort();
  t.equal((await running).cancelled, true);
});

t.test('a missing image with no registry: a clear error naming it, at once', async (t) => {
  const { runner } = await startRunner(t);
  const image = 'dockhand-test-no-such-image:none';
  const err = await runner.ensureImage(image).catch((e: unknown) => e);
  t.ok(err instanceof ImageUnavailableError);
  t.match(
    (err as Error).message,
    /^The image dockhand-test-no-such-image:none is not on this engine and could not be pulled: .+\.$/,
  );
  await t.rejects(runner.acquire(slotSpec(image)), ImageUnavailableError);
  await runner.ensureImage(PYTHON);
  t.pass('a present image is fine');
});

t.test(
  "start() removes a dead worker's containers and workspaces, never following its symlinks",
  async (t) => {
    const config = testConfig(t);
    const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    const deadOwner = `${hostname()}/${pidMax + 1}`;
    const dead = new DockerSandboxDriver(docker, deadOwner, { kind: EXEC_KIND });
    const sinks = { stdout: new PassThrough().resume(), stderr: new PassThrough().resume() };
    const leftover = await dead.createAttached(
      { image: COREUTILS, cmd: ['sleep', '600'], memoryMb: 32 },
      sinks,
    );
    t.teardown(() => leftover.destroy());
    // A function container of this very process: not the exec runner's to remove.
    const functions = new DockerSandboxDriver(docker, owner);
    const fnBox = await functions.createAttached(
      { image: COREUTILS, cmd: ['sleep', '600'], memoryMb: 32 },
      sinks,
    );
    t.teardown(() => fnBox.destroy());

    const outside = tempDir(t, 'outside');
    writeFileSync(path.join(outside, 'precious'), 'keep me');
    const root = config.exec.workspaceDir;
    const deadDir = path.join(root, `${hostname()}-${pidMax + 1}`, 'abc');
    mkdirSync(path.join(deadDir, 'output'), { recursive: true });
    writeFileSync(path.join(deadDir, 'output', 'result'), 'x');
    symlinkSync(outside, path.join(deadDir, 'output', 'dir-link'));
    symlinkSync(path.join(outside, 'precious'), path.join(deadDir, 'output', 'file-link'));
    const liveDir = path.join(root, `${hostname()}-1`, 'def');
    const otherHost = path.join(root, `elsewhere-${pidMax + 1}`, 'ghi');
    for (const d of [liveDir, otherHost]) mkdirSync(d, { recursive: true });

    const runner = new ExecRunner({ docker, owner, config: config.exec, initPath });
    await runner.start();
    t.teardown(() => runner.close());
    t.ok(await gone(leftover.id), "the dead worker's container is removed");
    t.notOk(await gone(fnBox.id), "this process's function container stays");
    t.notOk(existsSync(path.dirname(deadDir)), "the dead worker's workspaces are removed");
    t.equal(readFileSync(path.join(outside, 'precious'), 'utf8'), 'keep me', 'through no symlink');
    t.ok(existsSync(liveDir), "a live process's workspaces stay");
    t.ok(existsSync(otherHost), "another host's stay");
  },
);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () =>
        res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}`)),
      );
    });
    req.on('error', reject);
  });
}
