import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import t, { type Test } from 'tap';
import { startCountingTarget } from '../helpers/counting-target.ts';
import { REDIS_URL, testEnv } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { containersOf, type RoleProcess, startRoleProcess } from '../helpers/role-process.ts';
import { waitFor } from '../helpers/wait-for.ts';

/**
 * Workers that die or stall, as real processes (`dockhand worker`) on the test Redis: what a
 * job does is counted where it lands (a loopback target its HTTP job calls), so "ran once" and
 * "ran twice" are told apart by counting, and every wait is on an event or a condition.
 */
leakCheck(t);
// Worker processes start and stop throughout, and recovery waits out real locks: on a busy
// machine that takes longer than tap's default for a file.
t.setTimeout(240_000);
const target = await startCountingTarget();
t.teardown(() => target.close());
const redis = new Redis(REDIS_URL);
t.teardown(() => redis.quit());

function queueFor(t: Test, prefix: string) {
  const queue = new Queue('http-jobs', { connection: { url: REDIS_URL }, prefix });
  t.teardown(() => queue.close());
  return queue;
}

/** The queue's own event stream, for one job: what BullMQ recorded (active, stalled, completed…). */
async function eventsOf(prefix: string, jobId: string): Promise<string[]> {
  const entries = await redis.xrange(`${prefix}:http-jobs:events`, '-', '+');
  return entries.flatMap(([, fields]) => {
    const record: Record<string, string> = {};
    for (let i = 0; i < fields.length; i += 2) record[fields[i] as string] = fields[i + 1] as string;
    return record.jobId === jobId && record.event ? [record.event] : [];
  });
}

const env = (t: Test, extra: Record<string, string> = {}) =>
  testEnv(t, { HTTP_JOBS_ALLOWLIST: '127.0.0.1', ...extra });

t.test(
  'a worker SIGKILLed mid-job: a survivor finishes the job once and removes its containers',
  async (t) => {
    // The shipped defaults (JOB_LOCK_SECONDS, STALLED_CHECK_SECONDS, LEFTOVER_SWEEP_SECONDS).
    const base = env(t);
    const doomed = await startRoleProcess(t, 'worker', { ...base, POOL_MIN_IDLE: '1' });
    const left = await waitFor(async () => (await containersOf(doomed.owner)).length, {
      what: 'the warm containers of the worker to be killed',
    });
    const queue = queueFor(t, base.QUEUE_PREFIX as string);
    await queue.add(
      'http-jobs',
      { url: `${target.url}/hold/killed`, timeoutMs: 60_000 },
      { jobId: 'killed-mid-job' },
    );
    await target.arrived('killed', 1);
    t.equal((await queue.getJob('killed-mid-job'))?.processedBy, doomed.owner, 'the doomed worker runs it');

    const survivor = await startRoleProcess(t, 'worker', base);
    const killedAt = Date.now();
    await doomed.kill();
    await target.arrived('killed', 2, 45_000);
    const recoveredMs = Date.now() - killedAt;
    t.comment(
      `recovered in ${(recoveredMs / 1000).toFixed(1)} s (bound: JOB_LOCK_SECONDS + STALLED_CHECK_SECONDS)`,
    );
    t.equal((await queue.getJob('killed-mid-job'))?.processedBy, survivor.owner, 'the survivor took it over');
    target.release('killed');
    await waitFor(async () => (await (await queue.getJob('killed-mid-job'))?.getState()) === 'completed', {
      what: 'the job to complete',
    });
    t.equal(
      (await queue.getJob('killed-mid-job'))?.returnvalue.body,
      'killed',
      'its result is the finished run',
    );
    t.equal(target.count('killed'), 2, 'one run died with its worker, one finished: no third');
    t.same(
      (await eventsOf(base.QUEUE_PREFIX as string, 'killed-mid-job')).filter((e) =>
        ['stalled', 'completed', 'failed'].includes(e),
      ),
      ['stalled', 'completed'],
      'stalled once, completed once, never failed',
    );

    t.ok(left > 0, `the dead worker had ${left} containers`);
    // The survivor's sweep gets there within LEFTOVER_SWEEP_SECONDS (on a shared host another
    // worker's start-up may get there first; leftover-sweep.test.ts shows the sweep itself).
    await waitFor(async () => (await containersOf(doomed.owner)).length === 0, {
      what: "the dead worker's containers to be removed",
      timeoutMs: 30_000,
    });
    t.equal(await survivor.stop(), 0, 'the survivor shuts down cleanly');
  },
);

/** Busy loops, one more than the CPUs, until `t` ends. */
function loadCpus(t: Test) {
  const hogs = Array.from({ length: availableParallelism() + 1 }, () =>
    spawn(process.execPath, ['-e', 'for (;;);'], { stdio: 'ignore' }),
  );
  t.teardown(async () => {
    await Promise.all(
      hogs.map(async (hog) => {
        if (hog.exitCode !== null || hog.signalCode !== null) return;
        const gone = once(hog, 'exit');
        hog.kill('SIGKILL');
        await gone;
      }),
    );
  });
}

t.test(
  'a live worker keeps its job through a busy CPU and a frozen event loop: no false stall',
  async (t) => {
    // Short locks so that the hold spans several of them (renewed every third, as by default:
    // a stall up to 2.7 s is survived).
    const base = env(t, { JOB_LOCK_SECONDS: '4', STALLED_CHECK_SECONDS: '1' });
    const prefix = base.QUEUE_PREFIX as string;
    const workers = await Promise.all([
      startRoleProcess(t, 'worker', base),
      startRoleProcess(t, 'worker', base),
    ]);
    const queue = queueFor(t, prefix);
    loadCpus(t);
    await queue.add(
      'http-jobs',
      { url: `${target.url}/hold/busy`, timeoutMs: 60_000 },
      { jobId: 'busy-cpu' },
    );
    await target.arrived('busy', 1);
    const holder = (await queue.getJob('busy-cpu'))?.processedBy;
    const owner = workers.find((w) => w.owner === holder) as RoleProcess;
    t.ok(owner, 'one of the two workers runs it; the other keeps checking for stalls');

    // Stalled checks run once a second (BullMQ writes the time of each to stalled-check): wait
    // for enough of them to span two and a half lock lifetimes with the CPU loaded.
    const checks = new Set<string>();
    await waitFor(
      async () => {
        const at = await redis.get(`${prefix}:http-jobs:stalled-check`);
        if (at) checks.add(at);
        return checks.size >= 10;
      },
      { what: 'ten stalled checks while the job is held', timeoutMs: 60_000 },
    );
    // Then a frozen event loop (SIGSTOP) for a quarter of the lock: its renewal timer fires late,
    // still within the lock.
    owner.child.kill('SIGSTOP');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    owner.child.kill('SIGCONT');
    const after = new Set<string>();
    await waitFor(
      async () => {
        const at = await redis.get(`${prefix}:http-jobs:stalled-check`);
        if (at) after.add(at);
        return after.size >= 4;
      },
      { what: 'more stalled checks after the freeze', timeoutMs: 30_000 },
    );
    target.release('busy');
    await waitFor(async () => (await (await queue.getJob('busy-cpu'))?.getState()) === 'completed', {
      what: 'the job to complete',
    });
    t.equal(target.count('busy'), 1, 'it ran once');
    t.notOk((await eventsOf(prefix, 'busy-cpu')).includes('stalled'), 'it was never taken for stalled');
    t.equal((await queue.getJob('busy-cpu'))?.processedBy, holder, 'by the worker that took it');
  },
);

t.test('a job that kills its worker every time fails after MAX_STALLED_COUNT stalls', async (t) => {
  const base = env(t, { JOB_LOCK_SECONDS: '2', STALLED_CHECK_SECONDS: '1', MAX_STALLED_COUNT: '1' });
  const prefix = base.QUEUE_PREFIX as string;
  const queue = queueFor(t, prefix);
  // Two workers at all times: each one the job reaches is killed, and replaced.
  const alive = new Map<string, RoleProcess>();
  const add = async () => {
    const w = await startRoleProcess(t, 'worker', base);
    alive.set(w.owner, w);
  };
  await Promise.all([add(), add()]);
  await queue.add('http-jobs', { url: `${target.url}/hold/poison`, timeoutMs: 60_000 }, { jobId: 'poison' });
  for (const n of [1, 2]) {
    await target.arrived('poison', n);
    const holder = (await queue.getJob('poison'))?.processedBy as string;
    const victim = alive.get(holder);
    t.ok(victim, `run ${n} is on a worker we started`);
    alive.delete(holder);
    await victim?.kill();
    await add();
  }
  await waitFor(async () => (await (await queue.getJob('poison'))?.getState()) === 'failed', {
    what: 'the job to fail',
    timeoutMs: 30_000,
  });
  const failed = (await queue.getJob('poison')) as NonNullable<Awaited<ReturnType<typeof queue.getJob>>>;
  t.equal(failed.failedReason, 'job stalled more than allowable limit', 'failed for stalling');
  t.equal(target.count('poison'), 2, 'it ran MAX_STALLED_COUNT + 1 times, then no more');
  t.equal(failed.attemptsMade, 1, 'failed for good, not retried (attempts: 3 is for errors it throws)');
  t.same(
    (await eventsOf(prefix, 'poison')).filter((e) => e === 'stalled' || e === 'failed'),
    ['stalled', 'stalled', 'failed'],
    'stalled twice, then failed',
  );
});
