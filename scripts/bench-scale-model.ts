// The arithmetic of bench:scale, kept pure so a unit test can pin it on fixed inputs: what
// Redis's INFO and /proc say, and the projection of how many workers one Redis can feed.

/** `INFO` text → its fields (section headers and blank lines dropped). */
export function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.indexOf(':');
    if (at > 0) fields.set(line.slice(0, at), line.slice(at + 1));
  }
  return fields;
}

const num = (fields: Map<string, string>, name: string): number => {
  const value = Number(fields.get(name));
  if (!Number.isFinite(value)) throw new Error(`Redis INFO has no number for ${name}.`);
  return value;
};

/**
 * Redis's CPU seconds so far (`INFO cpu`): the main thread, where every command and script
 * runs (what saturates first), and the whole process (AOF writes and other threads too).
 */
export function redisCpuSeconds(info: Map<string, string>): { main: number; total: number } {
  const total = num(info, 'used_cpu_sys') + num(info, 'used_cpu_user');
  // Redis before 6.0 has no per-thread figures: the process is then the best there is.
  const main = info.has('used_cpu_sys_main_thread')
    ? num(info, 'used_cpu_sys_main_thread') + num(info, 'used_cpu_user_main_thread')
    : total;
  return { main, total };
}

/**
 * Commands Redis has run so far, those inside Lua scripts included (`INFO commandstats`,
 * whose `calls` count each script's own commands as well as the EVALSHA).
 */
export function commandCalls(info: Map<string, string>): number {
  let calls = 0;
  for (const [name, value] of info) {
    if (!name.startsWith('cmdstat_')) continue;
    const match = /(?:^|,)calls=(\d+)/.exec(value);
    if (match) calls += Number(match[1]);
  }
  return calls;
}

/**
 * A process's CPU seconds (user + system) from the text of `/proc/<pid>/stat`. The command
 * name (field 2) is in parentheses and may hold spaces or parentheses itself, so the fields
 * are counted from the last `)`: utime and stime are fields 14 and 15.
 */
export function procCpuSeconds(stat: string, ticksPerSecond = 100): number {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error('Not a /proc/<pid>/stat line.');
  return (utime + stime) / ticksPerSecond;
}

/** The machine's CPU ticks from the first line of `/proc/stat`: busy and all. */
export function machineTicks(stat: string): { busy: number; total: number } {
  const line = stat.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) throw new Error('Not /proc/stat: no "cpu " line.');
  // user nice system idle iowait irq softirq steal (guest time is already inside user and nice)
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line
    .trim()
    .split(/\s+/)
    .slice(1, 9)
    .map((x) => Number(x) || 0) as number[];
  const busy = (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
  return { busy, total: busy + (idle ?? 0) + (iowait ?? 0) };
}

/** What one measured window cost, per 1,000 jobs, and how busy Redis and the machine were. */
export interface WindowCost {
  /** Redis main-thread CPU, ms per 1,000 jobs. */
  redisMainMsPer1000: number;
  /** The whole redis-server process, ms per 1,000 jobs. */
  redisTotalMsPer1000: number;
  /** Redis commands (script-internal ones included) per job. */
  commandsPerJob: number;
  /** Share of one core Redis's main thread used over the window. */
  redisBusy: number;
}

export function windowCost(
  before: { main: number; total: number; calls: number },
  after: { main: number; total: number; calls: number },
  jobs: number,
  seconds: number,
): WindowCost {
  const per1000 = (cpuSeconds: number) => (jobs > 0 ? (cpuSeconds * 1e6) / jobs : 0);
  return {
    redisMainMsPer1000: per1000(after.main - before.main),
    redisTotalMsPer1000: per1000(after.total - before.total),
    commandsPerJob: jobs > 0 ? (after.calls - before.calls) / jobs : 0,
    redisBusy: seconds > 0 ? (after.main - before.main) / seconds : 0,
  };
}

export interface ProjectionInputs {
  /** Redis main-thread CPU per job, ms per 1,000 jobs. */
  redisMsPer1000: number;
  /** Redis main-thread CPU an idle Dockhand process costs, ms per second. */
  idleMsPerSecondPerProcess: number;
  /** One worker's jobs per second. */
  workerJobsPerSecond: number;
  /** Redis CPU one may spend, ms per second: 1000 is one core saturated. */
  budgetMsPerSecond: number;
}

export interface Projection {
  /** The most jobs per second Redis can run within the budget, idle costs aside. */
  redisJobsPerSecond: number;
  /** What one worker asks of Redis at its rate, ms of Redis CPU per second. */
  redisMsPerSecondPerWorker: number;
  /** Workers at which Redis spends its whole budget (fractional: the break-even point). */
  workers: number;
}

/**
 * Workers one Redis can feed: each worker costs Redis its jobs' CPU plus its idle cost, and
 * Redis runs every command on one thread, so the budget is at most one core (1000 ms a
 * second). Assumes the per-job cost does not grow with the number of workers (the bench shows
 * it across 1, 2 and 4) and that gateways, which cost Redis their enqueue inside the per-job
 * figure, are scaled beside the workers.
 */
export function projectWorkers(inputs: ProjectionInputs): Projection {
  const { redisMsPer1000, idleMsPerSecondPerProcess, workerJobsPerSecond, budgetMsPerSecond } = inputs;
  if (!(redisMsPer1000 > 0)) throw new Error('The Redis CPU per job must be above zero.');
  const perWorker = (workerJobsPerSecond * redisMsPer1000) / 1000 + Math.max(0, idleMsPerSecondPerProcess);
  return {
    redisJobsPerSecond: (budgetMsPerSecond * 1000) / redisMsPer1000,
    redisMsPerSecondPerWorker: perWorker,
    workers: perWorker > 0 ? budgetMsPerSecond / perWorker : Number.POSITIVE_INFINITY,
  };
}

/** A worker's jobs per second: its concurrency over a job's duration, at most what its CPU allows. */
export function workerRate(concurrency: number, jobSeconds: number, cpuBoundJobsPerSecond: number): number {
  return Math.min(concurrency / jobSeconds, cpuBoundJobsPerSecond);
}
