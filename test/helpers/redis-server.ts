import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';

/** The shared test Redis (prepared by scripts/prepare.sh); each test keeps to a prefix of its own. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Ports of the shared and the private servers, so the leak check can say a socket is a Redis client. */
export const redisPorts = new Set([Number(new URL(REDIS_URL).port || 6379)]);

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A private redis-server for tests that stop Redis or need its data to survive. `port` starts
 * it where one ran before (a restart: pass the same `--dir` and AOF arguments too).
 */
export async function startRedisServer(
  extraArgs: string[] = [],
  { port: wanted }: { port?: number } = {},
): Promise<{ url: string; port: number; process: ChildProcess; stop(): Promise<void> }> {
  const port = wanted ?? (await freePort());
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const url = `redis://127.0.0.1:${port}`;
  redisPorts.add(port);
  // The server says when it accepts connections: wait for that line, not a retried connect.
  await new Promise<void>((resolve, reject) => {
    let log = '';
    const onData = (chunk: Buffer) => {
      log += chunk;
      if (!/Ready to accept connections/.test(log)) return;
      child.off('exit', onExit);
      child.stdout?.off('data', onData);
      child.stdout?.resume(); // keep draining its log
      resolve();
    };
    const onExit = (code: number | null) =>
      reject(new Error(`redis-server exited (${code}) before it was ready: ${log}`));
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
  let stopped: Promise<void> | undefined;
  return {
    url,
    port,
    process: child,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
      return stopped;
    },
  };
}
