import type { ChildProcess } from 'node:child_process';
import { hostname } from 'node:os';
import Docker from 'dockerode';
import type { Test } from 'tap';
import { OWNER_LABEL, SANDBOX_LABEL } from '../../runtimes/docker-sandbox.ts';
import { runCli } from './run-cli.ts';

/** One JSON log line of a role (pino), as parsed. */
export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface RoleProcess {
  role: string;
  child: ChildProcess;
  pid: number;
  /** The `host/pid` its containers and jobs (processedBy) are labelled with. */
  owner: string;
  /** Where it listens (from its `dockhand started` line). */
  url: string;
  /** Every log line so far. */
  lines: LogLine[];
  /** Resolves with the first line (so far or to come) that `match` accepts. */
  waitForLine(match: (line: LogLine) => boolean, what: string): Promise<LogLine>;
  /** SIGKILL, and resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM (graceful), and resolves with the exit code. */
  stop(): Promise<number | null>;
  exited: Promise<number | null>;
}

/**
 * `node scripts/dockhand.js <role>` as a real process with JSON logs (LOG_LEVEL info), started
 * asynchronously; resolves once it logged `dockhand started`. Killed when `t` ends if still
 * running, and what containers it left (owner `<host>/<its pid>`, which the leak check does not
 * look at) are removed then.
 */
export async function startRoleProcess(
  t: Test,
  role: string,
  env: Record<string, string>,
): Promise<RoleProcess> {
  // Info, whatever testEnv says: its lines are what this helper waits on.
  const run = runCli([role], { NODE_AGENT: 'no', ...env, LOG_LEVEL: 'info' });
  const { child } = run;
  const exited = run.done.then(({ code }) => code as number | null);
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    await removeContainersOf(`${hostname()}/${child.pid}`);
  });
  const lines: LogLine[] = [];
  const watchers = new Set<(line: LogLine) => void>();
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    for (const text of parts) {
      let line: LogLine;
      try {
        line = JSON.parse(text);
      } catch {
        line = { msg: text };
      }
      lines.push(line);
      for (const watch of watchers) watch(line);
    }
  });
  const waitForLine = (match: (line: LogLine) => boolean, what: string) => {
    const seen = lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise<LogLine>((resolve, reject) => {
      const watch = (line: LogLine) => {
        if (!match(line)) return;
        watchers.delete(watch);
        resolve(line);
      };
      watchers.add(watch);
      run.done.then(({ code, stderr }) => {
        if (!watchers.delete(watch)) return;
        reject(new Error(`dockhand ${role} exited (${code}) before ${what}: ${stderr.slice(-2000)}`));
      });
    });
  };
  const started = await waitForLine((l) => l.msg === 'dockhand started', '"dockhand started"');
  const pid = child.pid as number;
  return {
    role,
    child,
    pid,
    owner: `${String(started.hostname)}/${pid}`,
    url: String(started.url),
    lines,
    waitForLine,
    exited,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** The Dockhand containers a process (`host/pid`) owns. */
export async function containersOf(owner: string): Promise<Docker.ContainerInfo[]> {
  return new Docker().listContainers({
    all: true,
    filters: { label: [`${SANDBOX_LABEL}=1`, `${OWNER_LABEL}=${owner}`] },
  });
}

async function removeContainersOf(owner: string): Promise<void> {
  const docker = new Docker();
  const left = await containersOf(owner).catch(() => []);
  await Promise.all(
    left.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => {}),
    ),
  );
}
