import { statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import si from 'systeminformation';
import { queryNvidiaGpus } from './nvidia-smi.ts';
import type { Capabilities, Gpu } from './protocol.ts';

const MiB = 1024 * 1024;

/** The MIaaS agent's names: "linux", "windows", "darwin"; other platforms as Node names them. */
export function osName(platform: NodeJS.Platform = process.platform): string {
  return platform === 'win32' ? 'windows' : platform;
}

/**
 * statfs of the directory, or of its nearest existing parent: DATA_DIR may not exist yet on a
 * fresh node, and the disk it will live on is the one that matters.
 */
export async function statfsNearest(dir: string): Promise<{ totalMb: number; freeMb: number }> {
  let current = path.resolve(dir);
  for (;;) {
    try {
      const s = await statfs(current);
      return {
        totalMb: Math.floor((s.blocks * s.bsize) / MiB),
        freeMb: Math.floor((s.bavail * s.bsize) / MiB),
      };
    } catch (err) {
      const parent = path.dirname(current);
      if (parent === current) throw err;
      current = parent;
    }
  }
}

/**
 * GPUs: nvidia-smi wherever it answers; on macOS, systeminformation's graphics controllers
 * (system_profiler, run asynchronously there). Elsewhere graphics() is not used: on Linux and
 * Windows it calls nvidia-smi synchronously without a time limit.
 */
export async function detectGpus(options: { nvidiaSmi?: string; timeoutMs?: number } = {}): Promise<Gpu[]> {
  const nvidia = await queryNvidiaGpus({ command: options.nvidiaSmi, timeoutMs: options.timeoutMs });
  if (nvidia.length > 0 || process.platform !== 'darwin') return nvidia;
  try {
    const { controllers } = await si.graphics();
    return controllers.map((c) => ({
      model: c.model,
      vendor: c.vendor,
      memory_mb: Math.max(0, Math.floor(c.vram ?? 0)),
      driver: c.driverVersion ?? '',
    }));
  } catch {
    return [];
  }
}

export interface CapabilityOptions {
  /** Where Dockhand keeps its data: disk_mb is the size of this filesystem. */
  dataDir: string;
  /** GPU detection; default detectGpus(). */
  gpus?: () => Promise<Gpu[]>;
}

/** What the node offers, as the MIaaS agent reported it at registration. Never rejects. */
export async function detectCapabilities(options: CapabilityOptions): Promise<Capabilities> {
  const [disk, gpus] = await Promise.all([
    statfsNearest(options.dataDir).catch(() => ({ totalMb: 0 })),
    (options.gpus ?? detectGpus)().catch(() => []),
  ]);
  return {
    os: osName(),
    cpu_count: Math.max(1, os.cpus().length),
    mem_mb: Math.floor(os.totalmem() / MiB),
    disk_mb: disk.totalMb,
    gpus,
  };
}
