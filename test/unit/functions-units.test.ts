import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import t from 'tap';
import { OutputCapError } from '../../core/errors.ts';
import { advise, PRICE_PER_GB_SECOND, summariseSamples } from '../../processors/functions/auto-tuner.ts';
import { bundleFromFiles, checkPath } from '../../processors/functions/code-archive.ts';
import { CgroupProfiler } from '../../runtimes/cgroup-profiler.ts';
import { cpuForMemory } from '../../runtimes/docker-sandbox.ts';
import { FrameChannel } from '../../runtimes/frame-channel.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { tempDir } from '../helpers/temp-dir.ts';

leakCheck(t);

t.test('auto-tuner patterns, headroom and savings', async (t) => {
  const waste = advise({
    memoryLimitMb: 512,
    peakMb: 45,
    cpuPercent: 50,
    durationMs: 450,
    monthlyInvocations: 1_000_000,
  });
  t.equal(waste.pattern, 'resource_waste');
  t.equal(waste.recommendationMb, 128, '45 MB × 1.5 headroom, rounded up to 64 MB steps, at least 128');
  t.equal(waste.recommendation, '128MB');
  t.equal(waste.savings, 75, 'the seed example: 512 → 128 MB saves 75%');
  const expected = ((512 - 128) / 1024) * 0.45 * 1_000_000 * PRICE_PER_GB_SECOND;
  t.equal(waste.monthlySavingsUsd, Math.round(expected * 100) / 100);
  t.match(waste.tip, /allocated 512MB but peak usage was only 45MB\. Switch to 128MB to save \$2\.81\/month/);

  const risk = advise({ memoryLimitMb: 128, peakMb: 120, cpuPercent: 50, durationMs: 100 });
  t.equal(risk.pattern, 'memory_risk');
  t.ok(
    risk.recommendationMb > 128 && 120 / risk.recommendationMb <= 0.7,
    `peak back under 70% (${risk.recommendationMb})`,
  );
  t.ok(risk.savings < 0 && risk.monthlySavingsUsd < 0, 'safety costs money, said as such');

  const io = advise({ memoryLimitMb: 256, peakMb: 150, cpuPercent: 3, durationMs: 4000 });
  t.equal(io.pattern, 'io_bound');
  t.equal(io.recommendationMb, 256);

  const ok = advise({ memoryLimitMb: 256, peakMb: 150, cpuPercent: 80, durationMs: 40 });
  t.equal(ok.pattern, 'balanced');
  t.equal(ok.savings, 0);

  const samples = Array.from({ length: 20 }, (_, i) => ({
    t: 1_000_000 + i * 1000,
    durationMs: 10 + i,
    peakMb: i === 19 ? 100 : 40,
    cpuPercent: 50,
    status: 'SUCCESS',
    memoryLimitMb: 512,
  }));
  const view = summariseSamples(samples, 512);
  t.equal(view.samples, 20);
  t.equal(view.p95PeakMb, 40, 'the p95 peak ignores one outlier in twenty');
  t.equal(view.p50DurationMs, 19);
  t.equal(view.observedPerHour, 3600);
  t.equal(view.monthlyInvocations, 2_592_000);
  t.equal(view.advice?.pattern, 'resource_waste');
  t.equal(summariseSamples([], 128).advice, null);
});

t.test('code paths that could escape the task directory are refused', async (t) => {
  for (const bad of ['../x.js', 'a/../../x.js', '/etc/passwd', 'a\\b.js', 'dir/', '']) {
    t.throws(() => checkPath(bad, 'f'), /not a safe relative file path/, JSON.stringify(bad));
  }
  // A regex's `.` stops at a newline: `a\n/../../x.js` once passed, and resolves to /x.js.
  for (const bad of [
    'a\n/../../x.js',
    'a\nb.js',
    'a\rb.js',
    'nul\u0000.js',
    'tab\t.js',
    'del\u007f',
    'ls\u2028.js',
  ]) {
    t.throws(() => checkPath(bad, 'f'), /control characters are refused/, encodeURIComponent(bad));
  }
  const caught = (() => {
    try {
      bundleFromFiles({ 'a\n/../../x.js': '' });
    } catch (err) {
      return err;
    }
  })();
  t.match(caught, { field: 'body.code.files' }, 'no control character reaches the field name');
  t.equal(checkPath('./src/index.js', 'f'), 'src/index.js');
  t.equal(checkPath('a/..b/c.js', 'f'), 'a/..b/c.js', 'dots inside a name are fine');
  t.same(bundleFromFiles({ 'index.js': 'hi' }), { 'index.js': Buffer.from('hi').toString('base64') });
  t.throws(() => bundleFromFiles({}), /has no files/);
});

t.test('cgroup profiler reads v1 and v2 trees and resets the peak', async (t) => {
  const root = tempDir(t, 'cgroup');
  const v1 = path.join(root, 'memory', 'docker', 'abc');
  mkdirSync(v1, { recursive: true });
  mkdirSync(path.join(root, 'cpuacct', 'docker', 'abc'), { recursive: true });
  writeFileSync(path.join(v1, 'memory.max_usage_in_bytes'), `${64 * 1024 * 1024}\n`);
  writeFileSync(path.join(root, 'cpuacct', 'docker', 'abc', 'cpuacct.usage'), '123456789\n');
  const v2 = path.join(root, 'system.slice', 'docker-def.scope');
  mkdirSync(v2, { recursive: true });
  writeFileSync(path.join(v2, 'memory.peak'), '2048\n');
  writeFileSync(path.join(v2, 'cpu.stat'), 'usage_usec 5000\nuser_usec 4000\n');
  const profiler = new CgroupProfiler(root);
  t.match(await profiler.sample('abc'), { memoryPeakBytes: 64 * 1024 * 1024, cpuNs: 123456789 });
  t.equal(await profiler.resetPeak('abc'), true);
  t.equal(readFileSync(path.join(v1, 'memory.max_usage_in_bytes'), 'utf8'), '0');
  t.match(await profiler.sample('def'), { memoryPeakBytes: 2048, cpuNs: 5_000_000 });
  // Its files stay open between calls and are read again from the start: new values, not old.
  writeFileSync(path.join(v2, 'cpu.stat'), 'usage_usec 70000\nuser_usec 4000\n');
  t.match(await profiler.sample('def'), { cpuNs: 70_000_000 });
  profiler.forget('def');
  t.match(await profiler.sample('def'), { cpuNs: 70_000_000 }, 'forgotten, then found again');
  // Forgotten while a read waits for its paths: the read answers nothing rather than read
  // descriptors closed under it.
  const pending = profiler.sample('def');
  profiler.forget('def');
  t.equal(await pending, null);
  t.match(await profiler.sample('abc'), { cpuNs: 123456789 });
  profiler.close();
  t.match(await profiler.sample('abc'), { cpuNs: 123456789 }, 'closed: found again when asked');
  profiler.close();
  t.equal(await profiler.sample('nope'), null);
});

t.test('CPU follows memory as on Lambda, within bounds', async (t) => {
  t.equal(cpuForMemory(1769, 8), 1);
  t.equal(cpuForMemory(3538, 8), 2);
  t.equal(cpuForMemory(128, 8), 0.25, 'floored so a runtime can start');
  t.equal(cpuForMemory(10240, 2), 2, 'never more than the host has');
});

t.test('the frame channel matches replies, keeps stray output as log and caps it', async (t) => {
  const input = new PassThrough();
  const channel = new FrameChannel(input, { rawCap: 100 });
  const sent: string[] = [];
  input.on('data', (d) => sent.push(String(d)));
  const reply = channel.request({ type: 'ping' });
  const { id } = JSON.parse(sent[0] as string);
  channel.stdout.write('child process output\n');
  channel.stdout.write(`\x1eDH ${JSON.stringify({ type: 'pong', id })}\n`);
  t.equal((await reply).type, 'pong');
  t.equal(channel.takeRaw(), 'child process output\n');
  const pending = channel.request({ type: 'invoke' });
  channel.stderr.write('x'.repeat(200));
  await t.rejects(pending, OutputCapError);
  t.ok(channel.closed instanceof OutputCapError);
});

t.test('power sweep: trimmed mean, percentiles, Lambda billing per call, strategies', async (t) => {
  const { trimmedMean, percentile, invocationCost, summarisePoint, pickBest, sweepResult, formatUsd } =
    await import('../../processors/functions/power-sweep.ts');
  t.equal(trimmedMean([100, 1, 2, 3, 4]), 3, 'fastest and slowest 20% dropped from five');
  t.equal(trimmedMean([1, 3]), 2, 'too few runs to trim');
  t.equal(percentile([5, 1, 4, 2, 3, 6, 7, 8, 9, 10], 0.5), 5);
  t.equal(percentile([5, 1, 4, 2, 3, 6, 7, 8, 9, 10], 0.9), 9);
  t.equal(invocationCost(1024, 0.2), 0.0000166667 / 1000, 'billed per started millisecond');

  const billed = summarisePoint(1024, [0.2, 1.5], 0);
  t.equal(
    billed.costUsd,
    (invocationCost(1024, 1) + invocationCost(1024, 2)) / 2,
    'each call rounded up on its own, then averaged (not the mean rounded up)',
  );
  t.equal(billed.costPerMillionUsd, Math.round(billed.costUsd * 1e10) / 1e4);
  t.equal(summarisePoint(128, [], 3).runs, 3, 'failed calls count as runs');

  // Fixed points, no timing: a CPU-bound function at 128 MB is 10× slower than at 1 GB.
  const point = (memoryMb: number, runs: number[], failures = 0) => summarisePoint(memoryMb, runs, failures);
  const cpuBound = [
    point(128, [100, 101, 102, 100, 99, 100, 101, 100, 100, 103]),
    point(1024, [10, 10.2, 10.1, 9.9, 10, 10, 10.3, 10, 10.1, 10]),
    point(2048, [9, 9, 9, 9, 9, 9, 9, 9, 9, 9], 1),
  ];
  t.equal(pickBest(cpuBound, 'cost')?.point.memoryMb, 1024, '1 GB × 10 ms is cheaper than 128 MB × 100 ms');
  t.equal(pickBest(cpuBound, 'speed')?.point.memoryMb, 1024, 'a size with failures is never picked');
  t.equal(pickBest(cpuBound, 'balanced')?.point.memoryMb, 1024);
  t.match(
    pickBest(cpuBound, 'cost')?.reason,
    /^1024 MB has the lowest cost, \$[0-9.]+ per million invocations\.$/,
  );
  t.equal(pickBest([], 'cost'), null);

  // A no-op: every size ~1.3 ms give or take noise; the larger sizes only look faster.
  const noop = [
    point(128, [1.2, 1.3, 1.25, 1.4, 1.3, 1.2, 1.9, 1.3, 1.35, 1.3]),
    point(256, [1.1, 1.2, 1.15, 1.2, 1.25, 1.1, 1.6, 1.2, 1.2, 1.15]),
    point(1769, [1.0, 1.1, 1.05, 1.1, 1.3, 1.0, 1.5, 1.1, 1.1, 1.05]),
  ];
  const fastest = pickBest(noop, 'speed');
  t.equal(fastest?.point.memoryMb, 128, 'differences inside the spread do not buy a larger size');
  t.match(
    fastest?.reason,
    /1769 MB is the fastest.*but 128 MB .*less than their spread.*smaller size is preferred/,
  );
  t.equal(pickBest(noop, 'cost')?.point.memoryMb, 128, 'for a no-op, cost picks the smallest size');
  t.equal(pickBest(noop, 'balanced')?.point.memoryMb, 128);

  const none = sweepResult('f', 'cost', [point(128, [], 2)], new Date(0));
  t.same([none.best, none.reason], [null, 'Every size had a failed call, so none is recommended.']);
  t.same(
    [formatUsd(0.2083), formatUsd(2.0833), formatUsd(0.00021), formatUsd(0)],
    ['$0.21', '$2.08', '$0.00021', '$0'],
  );
});

t.test('a ready frame that arrives before anyone waits is not lost', async (t) => {
  const channel = new FrameChannel(new PassThrough());
  const read = once(channel.stdout, 'data'); // after the channel's own listener: it has the frame
  channel.stdout.write('\x1eDH {"type":"ready","runtime":"node20"}\n');
  await read;
  t.equal((await channel.waitFor('ready', 1000)).runtime, 'node20');
  await t.rejects(channel.waitFor('ready', 20), /No ready frame within 20 ms/);
});
