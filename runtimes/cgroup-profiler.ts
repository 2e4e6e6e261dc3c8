import { closeSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';

/**
 * Per-invocation resource use of a warm container, read from its cgroup on the host (the
 * Docker stats API takes about a second per call; these files take microseconds).
 * cgroup v1: memory.max_usage_in_bytes (reset by writing 0) and cpuacct.usage (ns).
 * cgroup v2: memory.peak (reset by writing, on kernels that allow it) and cpu.stat usage_usec.
 * Reads are synchronous on purpose: these are kernel pseudo-files answered from memory in
 * microseconds, while each async read costs a libuv thread-pool round trip on the hot path.
 * The two files read on every call stay open, read again from offset 0 (the kernel renders
 * them anew): one pread instead of open + read + close, 3.5 µs against 12 here.
 */
export interface ResourceSample {
  /** Peak memory since the last reset, bytes. */
  memoryPeakBytes: number;
  /** CPU time consumed so far, ns. */
  cpuNs: number;
  /** Bytes through interfaces other than loopback. */
  netRxBytes: number;
  netTxBytes: number;
}

interface CgroupPaths {
  version: 1 | 2;
  memory: string;
  cpu: string;
  /** Open descriptors of the peak and CPU files, once first read. */
  fds?: { memory: number; cpu: number };
  /** Forgotten while a read waited: its descriptors are closed (their numbers may be reused). */
  forgotten?: boolean;
}

const buffer = Buffer.alloc(1024);

function pread(fd: number): string {
  try {
    return buffer.toString('utf8', 0, readSync(fd, buffer, 0, buffer.length, 0));
  } catch {
    // The container is gone (its cgroup with it).
    return '0';
  }
}

const V1_PARENTS = ['docker', 'system.slice'];

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

export class CgroupProfiler {
  readonly #root: string;
  readonly #cache = new Map<string, CgroupPaths | null>();

  /** `root` is /sys/fs/cgroup on the host; tests can point it at a fake tree. */
  constructor(root = '/sys/fs/cgroup') {
    this.#root = root;
  }

  async #paths(containerId: string): Promise<CgroupPaths | null> {
    const cached = this.#cache.get(containerId);
    if (cached !== undefined) return cached;
    let found: CgroupPaths | null = null;
    for (const parent of V1_PARENTS) {
      const leaf = parent === 'system.slice' ? `docker-${containerId}.scope` : containerId;
      const memory = path.join(this.#root, 'memory', parent, leaf);
      if (await exists(path.join(memory, 'memory.max_usage_in_bytes'))) {
        found = { version: 1, memory, cpu: path.join(this.#root, 'cpuacct', parent, leaf) };
        break;
      }
      const unified = path.join(this.#root, parent, leaf);
      if (await exists(path.join(unified, 'memory.peak'))) {
        found = { version: 2, memory: unified, cpu: unified };
        break;
      }
    }
    this.#cache.set(containerId, found);
    return found;
  }

  /** Starts a fresh per-invocation peak. Returns false where the kernel keeps peaks sticky. */
  async resetPeak(containerId: string): Promise<boolean> {
    const p = await this.#paths(containerId);
    if (!p || p.forgotten) return false;
    try {
      writeFileSync(this.#memoryFile(p), '0');
      return true;
    } catch {
      return false;
    }
  }

  /** `pid` (the container's process) counts its network traffic: pass it only when it has a network. */
  async sample(containerId: string, pid?: number): Promise<ResourceSample | null> {
    const p = await this.#paths(containerId);
    if (!p || p.forgotten) return null;
    if (!p.fds) {
      try {
        const memory = openSync(this.#memoryFile(p), 'r');
        try {
          p.fds = {
            memory,
            cpu: openSync(path.join(p.cpu, p.version === 1 ? 'cpuacct.usage' : 'cpu.stat'), 'r'),
          };
        } catch (err) {
          closeSync(memory);
          throw err;
        }
      } catch {
        return null;
      }
    }
    const mem = pread(p.fds.memory);
    const cpu = pread(p.fds.cpu);
    let net = '';
    if (pid) {
      try {
        net = readFileSync(`/proc/${pid}/net/dev`, 'utf8');
      } catch {
        // The process is gone: no traffic to count.
      }
    }
    const cpuNs =
      p.version === 1 ? Number(cpu.trim()) : Number(/usage_usec (\d+)/.exec(cpu)?.[1] ?? 0) * 1000;
    let netRxBytes = 0;
    let netTxBytes = 0;
    for (const line of net.split('\n').slice(2)) {
      const [iface, rest] = line.split(':');
      if (!rest || iface?.trim() === 'lo') continue;
      const fields = rest.trim().split(/\s+/).map(Number);
      netRxBytes += fields[0] ?? 0;
      netTxBytes += fields[8] ?? 0;
    }
    return { memoryPeakBytes: Number(mem.trim()) || 0, cpuNs: cpuNs || 0, netRxBytes, netTxBytes };
  }

  #memoryFile(p: CgroupPaths): string {
    return path.join(p.memory, p.version === 1 ? 'memory.max_usage_in_bytes' : 'memory.peak');
  }

  /** Drops what is kept of a container (its paths, its open files): call when it is removed. */
  forget(containerId: string): void {
    const p = this.#cache.get(containerId);
    this.#cache.delete(containerId);
    if (!p) return;
    p.forgotten = true;
    if (p.fds) {
      closeSync(p.fds.memory);
      closeSync(p.fds.cpu);
      p.fds = undefined;
    }
  }

  /** Forgets every container (the pool is closed: its containers are gone). */
  close(): void {
    for (const id of [...this.#cache.keys()]) this.forget(id);
  }
}
