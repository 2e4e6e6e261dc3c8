import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';

export const CLI = path.resolve(import.meta.dirname, '../../scripts/dockhand.js');

/**
 * Runs `dockhand <args>` as a child process with only PATH and `env`, collecting its output.
 * Asynchronously on purpose: spawnSync would block any server this test process serves (a stub
 * control plane, a target) until the child exits.
 */
export function runCli(args: string[], env: Record<string, string>, stdin?: string) {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  child.stdin.on('error', () => {}); // a child that exits before reading its stdin
  child.stdin.end(stdin ?? '');
  return {
    child,
    done: once(child, 'exit').then(([code]) => ({ code: code as number, stdout, stderr })),
    stdout: () => stdout,
  };
}
