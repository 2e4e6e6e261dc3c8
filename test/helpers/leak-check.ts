import { ChildProcess } from 'node:child_process';
import { readdir, rm } from 'node:fs/promises';
import { Server, Socket } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import type { Test } from 'tap';
import { OWNER_LABEL, SANDBOX_LABEL } from '../../runtimes/docker-sandbox.ts';
import { REDIS_URL, redisPorts } from './redis-server.ts';
import { TEMP_DIR_PREFIX } from './temp-dir.ts';
import { waitFor } from './wait-for.ts';

/**
 * One line at the top of every test file, `leakCheck(t)`, fails the file when it ends with
 * something still open that it made:
 *
 * - Dockhand containers (label `dockhand=1`) owned by this process (`dockhand.owner=<host>/<pid>`);
 * - temp directories made by the helpers (`dockhand-test-<pid>-*`, see temp-dir.ts);
 * - handles that keep the process alive and were not there when the check was installed:
 *   Redis connections (sockets to the test Redis or a private one), which covers BullMQ
 *   Workers and QueueEvents (each holds a blocking connection, named `<prefix>:<base64 queue>`
 *   and `…:qe` by BullMQ: CLIENT LIST turns those names back into "Worker of queue x"),
 *   other sockets, listening servers and child processes.
 *
 * Handles come from `process._getActiveHandles()`: undocumented but in every Node release
 * since 0.x, and it returns the socket objects themselves, so a leak is named by address
 * without wrapping ioredis or BullMQ. It lists only ref'd handles, i.e. what would keep the
 * process from exiting; an unref'd socket is not seen. `getActiveResourcesInfo()` would give
 * only type names, and counting them cannot tell Redis from HTTP.
 *
 * The check runs as the root's first teardown, so last (teardowns run in reverse), after the
 * file's own. Closes still under way get `settleMs` to finish. A leak throws one line,
 * `leaked: …`, which fails the file; leaked containers and directories are then removed, and
 * when a handle would keep the process alive it exits once TAP has written its summary.
 */
export function leakCheck(t: Test, { settleMs = 3000 }: { settleMs?: number } = {}): void {
  const baseline = new Set(activeHandles());
  t.teardown(async () => {
    let leaks = await findLeaks(baseline);
    if (isEmpty(leaks)) return;
    await waitFor(
      async () => {
        leaks = await findLeaks(baseline);
        return isEmpty(leaks);
      },
      { what: 'closes under way to finish', timeoutMs: settleMs },
    ).catch(() => {});
    if (isEmpty(leaks)) return;
    const line = `leaked: ${(await describe(leaks)).join('; ')}`;
    const docker = new Docker();
    await Promise.all([
      ...leaks.containers.map((c) =>
        docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => {}),
      ),
      ...leaks.dirs.map((d) => rm(d, { recursive: true, force: true })),
    ]);
    if (leaks.handles.length > 0) t.on('end', () => setImmediate(() => process.exit(1)));
    // A stack would point here, not at the leak, and tap reads `host:port` in it as a frame: a
    // blank one leaves the single line.
    throw Object.assign(new Error(line), { stack: '\n' });
  });
}

interface Leaks {
  handles: unknown[];
  dirs: string[];
  containers: Docker.ContainerInfo[];
}

const isEmpty = (l: Leaks) => l.handles.length + l.dirs.length + l.containers.length === 0;

function activeHandles(): unknown[] {
  return (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
}

async function findLeaks(baseline: Set<unknown>): Promise<Leaks> {
  const stdio = new Set<unknown>([process.stdin, process.stdout, process.stderr]);
  let handles = activeHandles().filter((h) => !baseline.has(h) && !stdio.has(h));
  // A leaked child's pipes are part of the child, not leaks of their own.
  const childPipes = new Set(
    handles.flatMap((h) => (h instanceof ChildProcess ? [h.stdin, h.stdout, h.stderr] : [])),
  );
  handles = handles.filter((h) => !childPipes.has(h as never));
  const dirs = (await readdir(tmpdir()))
    .filter((name) => name.startsWith(TEMP_DIR_PREFIX))
    .map((name) => path.join(tmpdir(), name));
  return { handles, dirs, containers: await ownContainers() };
}

async function ownContainers(): Promise<Docker.ContainerInfo[]> {
  try {
    return await new Docker().listContainers({
      all: true,
      filters: { label: [`${SANDBOX_LABEL}=1`, `${OWNER_LABEL}=${hostname()}/${process.pid}`] },
    });
  } catch (err) {
    // No engine at all (a machine without Docker running unit tests): it holds nothing of ours.
    if (/ENOENT|ECONNREFUSED/.test(String(err))) return [];
    throw err;
  }
}

async function describe(leaks: Leaks): Promise<string[]> {
  const names = await redisClientNames(leaks.handles);
  const lines = leaks.handles.map((h) => describeHandle(h, names));
  for (const c of leaks.containers)
    lines.push(`Dockhand container ${c.Id.slice(0, 12)}, ${c.Image}, ${c.State}`);
  for (const d of leaks.dirs) lines.push(`temp dir ${d}`);
  // Identical lines once, with a count: a leaked role is several sockets of one kind.
  const counts = new Map<string, number>();
  for (const l of lines) counts.set(l, (counts.get(l) ?? 0) + 1);
  return [...counts].map(([l, n]) => (n > 1 ? `${n} × ${l}` : l));
}

const local = (s: Socket) => `${s.localAddress?.replace(/^::ffff:/, '')}:${s.localPort}`;

/** CLIENT LIST of the test Redis, `addr` → `name`, for the leaked sockets that reach it. */
async function redisClientNames(handles: unknown[]): Promise<Map<string, string>> {
  const shared = Number(new URL(REDIS_URL).port || 6379);
  if (!handles.some((h) => h instanceof Socket && h.remotePort === shared)) return new Map();
  const redis = new Redis(REDIS_URL, {
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    const list = String(await redis.client('LIST'));
    return new Map(
      list
        .split('\n')
        .map((line) => [/\baddr=(\S+)/.exec(line)?.[1] ?? '', /\bname=(\S*)/.exec(line)?.[1] ?? ''] as const)
        .filter(([addr]) => addr),
    );
  } catch {
    return new Map();
  } finally {
    redis.disconnect();
  }
}

function describeHandle(h: unknown, names: Map<string, string>): string {
  if (h instanceof Socket && h.remotePort !== undefined) {
    const to = `${h.remoteAddress}:${h.remotePort}`;
    if (!redisPorts.has(h.remotePort)) return `TCP connection to ${to}`;
    const name = names.get(local(h)) ?? '';
    const bull = /^(.+):([A-Za-z0-9+/]+=*)(:qe)?$/.exec(name);
    if (bull) {
      const queue = Buffer.from(bull[2] as string, 'base64').toString();
      return `BullMQ ${bull[3] ? 'QueueEvents' : 'Worker'} of queue "${queue}", prefix ${bull[1]}, on Redis ${to}`;
    }
    if (name) return `Redis client "${name}" on ${to}`;
    return `Redis client on ${to}, unnamed: an ioredis client, a BullMQ Queue or a Worker's command connection`;
  }
  if (h instanceof Socket) return 'unix socket or pipe, a Docker attach stream say';
  if (h instanceof Server) {
    const a = h.address();
    return `server listening on ${typeof a === 'string' ? a : `${a?.address}:${a?.port}`}`;
  }
  if (h instanceof ChildProcess) return `child process ${h.pid}: ${h.spawnargs.join(' ').slice(0, 80)}`;
  return `handle ${(h as object)?.constructor?.name ?? typeof h}`;
}
