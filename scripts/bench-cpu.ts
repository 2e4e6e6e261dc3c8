// Where a call's CPU goes, by process: a snapshot of every process's CPU time (utime + stime
// from /proc/<pid>/stat) before and after a level, the difference divided by its calls. Linux
// only; elsewhere the snapshots are empty and the split says so. Every process on the machine
// is counted, grouped: the Dockhand server, Redis (when it runs here), the bench itself (the
// client), dockerd, containerd, the containerd shims, the containers' own processes (by their
// cgroup) and everything else.
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on Linux everywhere we run). */
const TICKS_PER_SECOND = 100;

export type CpuSnapshot = Map<number, { comm: string; ticks: number }>;

export function cpuSnapshot(): CpuSnapshot {
  const out: CpuSnapshot = new Map();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return out;
  }
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // The name is in parentheses and may hold spaces: the fields start after the last ')'.
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(pid), { comm, ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // Gone between the listing and the read.
    }
  }
  return out;
}

function groupOf(pid: number, comm: string, known: { server: number; redis?: number }): string {
  if (pid === known.server) return 'server';
  if (pid === known.redis) return 'redis';
  if (pid === process.pid) return 'client';
  if (comm.startsWith('containerd-shim')) return 'shim';
  if (comm === 'dockerd' || comm === 'containerd') return comm;
  try {
    if (readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes('docker')) return 'containers';
  } catch {
    // Gone: its time still counts, as other.
  }
  return 'other';
}

export const CPU_GROUPS = [
  'server',
  'redis',
  'containers',
  'dockerd',
  'shim',
  'containerd',
  'client',
  'other',
] as const;

/** CPU ms per call by group, and their total; empty where /proc is not there. */
export function cpuPerCall(
  before: CpuSnapshot,
  after: CpuSnapshot,
  calls: number,
  known: { server: number; redis?: number },
): Record<string, number> {
  const groups: Record<string, number> = {};
  for (const [pid, now] of after) {
    const spent = now.ticks - (before.get(pid)?.ticks ?? 0);
    if (spent <= 0) continue;
    const group = groupOf(pid, now.comm, known);
    groups[group] = (groups[group] ?? 0) + spent;
  }
  const perCall = (ticks: number) => (ticks * 1000) / TICKS_PER_SECOND / calls;
  const out: Record<string, number> = {};
  let total = 0;
  for (const group of CPU_GROUPS) {
    out[group] = perCall(groups[group] ?? 0);
    total += groups[group] ?? 0;
  }
  out.total = perCall(total);
  return out;
}
