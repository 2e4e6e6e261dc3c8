import { execFile } from 'node:child_process';
import type { Gpu } from './protocol.ts';

/** The query the agent runs; parseNvidiaSmi reads exactly these four columns. */
export const NVIDIA_SMI_ARGS = [
  '--query-gpu=name,memory.total,driver_version,uuid',
  '--format=csv,noheader,nounits',
] as const;

const UUID = /^(GPU|MIG)-[0-9A-Fa-f-]+$/;
const DRIVER = /^\d+(\.\d+)*$/;

/**
 * Reads `nvidia-smi --query-gpu=name,memory.total,driver_version,uuid --format=csv,noheader,nounits`.
 * What is not a GPU row ("No devices were found", a driver error, "Unable to determine the
 * device handle…" for a GPU that fell off the bus) is skipped, so a broken driver reports the
 * GPUs that still answer, or none. Columns are taken from the right: a model name may hold a comma.
 */
export function parseNvidiaSmi(output: string): Gpu[] {
  const gpus: Gpu[] = [];
  for (const raw of output.split(/\r?\n/)) {
    const fields = raw.trim().split(/\s*,\s*/);
    if (fields.length < 4) continue;
    const [memory, driver, uuid] = fields.slice(-3) as [string, string, string];
    const model = fields.slice(0, -3).join(', ');
    if (!model || !UUID.test(uuid) || !(DRIVER.test(driver) || driver === '[N/A]')) continue;
    if (!/^\d+$/.test(memory) && memory !== '[N/A]') continue;
    gpus.push({
      model,
      vendor: 'NVIDIA',
      memory_mb: memory === '[N/A]' ? 0 : Number(memory),
      driver: driver === '[N/A]' ? '' : driver,
      uuid,
    });
  }
  return gpus;
}

export interface NvidiaSmiOptions {
  /** The executable; default `nvidia-smi` from PATH. */
  command?: string;
  /** A hung driver makes nvidia-smi hang: it is killed after this long. Default 5000 ms. */
  timeoutMs?: number;
}

/**
 * Runs nvidia-smi without blocking the event loop and never rejects: absent, failing or too
 * slow means no NVIDIA GPUs. (systeminformation's graphics() runs it synchronously and
 * without a time limit, which a wedged driver turns into a frozen worker.)
 */
export function queryNvidiaGpus(options: NvidiaSmiOptions = {}): Promise<Gpu[]> {
  return new Promise((resolve) => {
    execFile(
      options.command ?? 'nvidia-smi',
      [...NVIDIA_SMI_ARGS],
      {
        timeout: options.timeoutMs ?? 5000,
        killSignal: 'SIGKILL',
        windowsHide: true,
        maxBuffer: 1024 * 1024,
      },
      // A non-zero exit still prints the GPUs that answered (see parseNvidiaSmi).
      (_err, stdout) => resolve(parseNvidiaSmi(String(stdout ?? ''))),
    );
  });
}
