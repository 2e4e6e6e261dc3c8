import t from 'tap';
import {
  commandCalls,
  machineTicks,
  parseInfo,
  procCpuSeconds,
  projectWorkers,
  redisCpuSeconds,
  windowCost,
  workerRate,
} from '../../scripts/bench-scale-model.ts';
import { leakCheck } from '../helpers/leak-check.ts';

leakCheck(t);

const INFO = [
  '# CPU',
  'used_cpu_sys:1.500000',
  'used_cpu_user:2.250000',
  'used_cpu_sys_children:0.000000',
  'used_cpu_user_children:0.000000',
  'used_cpu_sys_main_thread:1.250000',
  'used_cpu_user_main_thread:2.000000',
  '',
  '# Commandstats',
  'cmdstat_evalsha:calls=100,usec=5000,usec_per_call=50.00,rejected_calls=0,failed_calls=0',
  'cmdstat_hset:calls=250,usec=300,usec_per_call=1.20,rejected_calls=0,failed_calls=0',
  'cmdstat_info:calls=2,usec=90,usec_per_call=45.00,rejected_calls=0,failed_calls=0',
].join('\r\n');

t.test(
  'INFO: CPU of the main thread and of the process, commands counted with those inside scripts',
  async (t) => {
    const info = parseInfo(INFO);
    t.same(redisCpuSeconds(info), { main: 3.25, total: 3.75 });
    // rejected_calls and failed_calls are not calls: only `calls=` counts.
    t.equal(commandCalls(info), 352);
    t.same(
      redisCpuSeconds(parseInfo('used_cpu_sys:1\nused_cpu_user:1')),
      { main: 2, total: 2 },
      'no per-thread figures: the process',
    );
    t.throws(() => redisCpuSeconds(parseInfo('used_cpu_sys:1')), /used_cpu_user/);
  },
);

t.test('/proc/<pid>/stat: utime + stime counted from the last parenthesis', async (t) => {
  // The command name holds a space and a parenthesis; utime 250 and stime 50 ticks.
  const stat = '4242 (node (x) y) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 11 0 123 456 789';
  t.equal(procCpuSeconds(stat), 3);
  t.equal(procCpuSeconds(stat, 1000), 0.3);
  t.throws(() => procCpuSeconds('garbage'));
});

t.test('/proc/stat: busy ticks leave out idle and iowait', async (t) => {
  const stat = 'cpu  100 5 50 800 20 3 2 0 0 0\ncpu0 50 2 25 400 10 1 1 0 0 0\n';
  t.same(machineTicks(stat), { busy: 160, total: 980 });
  t.throws(() => machineTicks('intr 1 2 3'));
});

t.test('a window: ms of Redis CPU per 1,000 jobs, commands per job, share of a core', async (t) => {
  const cost = windowCost(
    { main: 10, total: 11, calls: 1000 },
    { main: 10.5, total: 11.6, calls: 55_000 },
    1000,
    2,
  );
  t.equal(cost.redisMainMsPer1000, 500);
  t.equal(Math.round(cost.redisTotalMsPer1000), 600);
  t.equal(cost.commandsPerJob, 54);
  t.equal(cost.redisBusy, 0.25);
  t.same(windowCost({ main: 0, total: 0, calls: 0 }, { main: 1, total: 1, calls: 1 }, 0, 0), {
    redisMainMsPer1000: 0,
    redisTotalMsPer1000: 0,
    commandsPerJob: 0,
    redisBusy: 0,
  });
});

t.test('projection: workers at which one Redis core is spent', async (t) => {
  // 0.5 ms of Redis a job: 2,000 jobs/s saturate a core. A worker at 200 jobs/s costs 100 ms/s
  // of jobs plus 2 ms/s idle: 1000 / 102 workers.
  const p = projectWorkers({
    redisMsPer1000: 500,
    idleMsPerSecondPerProcess: 2,
    workerJobsPerSecond: 200,
    budgetMsPerSecond: 1000,
  });
  t.equal(p.redisJobsPerSecond, 2000);
  t.equal(p.redisMsPerSecondPerWorker, 102);
  t.equal(p.workers.toFixed(3), (1000 / 102).toFixed(3));
  // At 70 % of the core, proportionally fewer.
  const headroom = projectWorkers({
    redisMsPer1000: 500,
    idleMsPerSecondPerProcess: 2,
    workerJobsPerSecond: 200,
    budgetMsPerSecond: 700,
  });
  t.equal(headroom.workers.toFixed(3), (700 / 102).toFixed(3));
  t.equal(headroom.redisJobsPerSecond, 1400);
  // An idle cost measured below zero (noise) is not a credit.
  const noisy = projectWorkers({
    redisMsPer1000: 500,
    idleMsPerSecondPerProcess: -1,
    workerJobsPerSecond: 200,
    budgetMsPerSecond: 1000,
  });
  t.equal(noisy.workers, 10);
  t.throws(
    () =>
      projectWorkers({
        redisMsPer1000: 0,
        idleMsPerSecondPerProcess: 0,
        workerJobsPerSecond: 1,
        budgetMsPerSecond: 1000,
      }),
    /above zero/,
  );
});

t.test("a worker's rate: concurrency over duration, capped by its CPU", async (t) => {
  t.equal(workerRate(10, 0.2, 300), 50);
  t.equal(workerRate(32, 0.05, 300), 300);
});
