import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import t from 'tap';
import { advise, PRICE_PER_GB_SECOND, summariseSamples } from '../../processors/functions/auto-tuner.ts';
import { bundleFromFiles, checkPath } from '../../processors/functions/code-archive.ts';
import { CgroupProfiler } from '../../runtimes/cgroup-profiler.ts';
import { cpuForMemory } from '../../runtimes/docker-sandbox.ts';
import { FrameChannel, OutputCapError } from '../../runtimes/frame-channel.ts';

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
  t.equal(checkPath('./src/index.js', 'f'), 'src/index.js');
  t.equal(checkPath('a/..b/c.js', 'f'), 'a/..b/c.js', 'dots inside a name are fine');
  t.same(bundleFromFiles({ 'index.js': 'hi' }), { 'index.js': Buffer.from('hi').toString('base64') });
  t.throws(() => bundleFromFiles({}), /has no files/);
});

t.test('cgroup profiler reads v1 and v2 trees and resets the peak', async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'cgroup-'));
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
  const channel = new FrameChannel(input, 100);
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

t.test('power sweep: trimmed mean, Lambda billing, strategies', async (t) => {
  const { trimmedMean, invocationCost, pickBest } = await import('../../processors/functions/power-sweep.ts');
  t.equal(trimmedMean([100, 1, 2, 3, 4]), 3, 'fastest and slowest 20% dropped from five');
  t.equal(trimmedMean([1, 3]), 2, 'too few runs to trim');
  t.equal(invocationCost(1024, 0.2), 0.0000166667 / 1000, 'billed per started millisecond');
  const points = [
    { memoryMb: 128, durationMs: 100, costUsd: invocationCost(128, 100), runs: 5, failures: 0 },
    { memoryMb: 1024, durationMs: 10, costUsd: invocationCost(1024, 10), runs: 5, failures: 0 },
    { memoryMb: 2048, durationMs: 9, costUsd: invocationCost(2048, 9), runs: 5, failures: 1 },
  ];
  t.equal(pickBest(points, 'cost')?.memoryMb, 1024, '1 GB × 10 ms is cheaper than 128 MB × 100 ms');
  t.equal(pickBest(points, 'speed')?.memoryMb, 1024, 'a size with failures is never picked');
  t.equal(pickBest(points, 'balanced')?.memoryMb, 1024);
  t.equal(pickBest([], 'cost'), null);
});

t.test('a ready frame that arrives before anyone waits is not lost', async (t) => {
  const channel = new FrameChannel(new PassThrough());
  channel.stdout.write('\x1eDH {"type":"ready","runtime":"node20"}\n');
  await new Promise((r) => setImmediate(r));
  t.equal((await channel.waitFor('ready', 1000)).runtime, 'node20');
  await t.rejects(channel.waitFor('ready', 20), /No ready frame within 20 ms/);
});
