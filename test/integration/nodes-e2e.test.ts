import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import t, { type Test } from 'tap';
import { RUNTIME_NAMES } from '../../runtimes/catalog.ts';
import { OWNER_LABEL, SANDBOX_LABEL } from '../../runtimes/docker-sandbox.ts';
import { testEnv } from '../helpers/env.ts';
import { ensureExecInit } from '../helpers/exec-init.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { buildLocalImage } from '../helpers/local-images.ts';
import { startTargetServer } from '../helpers/target-server.ts';
import { waitFor } from '../helpers/wait-for.ts';

/*
 * Issue 11's "done means", with real processes: `dockhand all` (npm start) lists itself as a
 * node; a second `dockhand worker` with its own DATA_DIR is a second node; draining one moves new
 * work to the other; a SIGKILLed worker goes offline within three intervals; and the MIaaS agent
 * registers and heartbeats with only CONTROL_PLANE_URL pointing at Dockhand.
 */

leakCheck(t);
const run = promisify(execFile);
const CLI = path.resolve(import.meta.dirname, '../../scripts/dockhand.js');
const MIAAS_AGENT = path.resolve(import.meta.dirname, '../fixtures/miaas-agent.py');
const API_KEY = 'nodes-e2e-api-key';
const REG = 'nodes-e2e-registration-token';
const INTERVAL = 1;
const OFFLINE_BOUND_MS = 3 * INTERVAL * 1000 + 7000; // three intervals, plus a loaded machine's slack
const docker = new Docker();

ensureExecInit(); // `all` runs exec too, and keeps a warm exec container of this image:
const WARM_IMAGE = buildLocalImage({ tag: 'dockhand-test-nodes-e2e:local', binaries: ['/bin/sleep'] });

const target = await startTargetServer();
t.teardown(() => target.close());

interface Spawned {
  child: ChildProcess;
  /** The last lines it wrote, for failure messages. */
  tail(): string;
  /** Resolves with the first line, from the start, that matches (rejects if the process exits first). */
  line(pattern: RegExp): Promise<RegExpExecArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnLogged(t: Test, command: string, args: string[], env: Record<string, string>): Spawned {
  // Asynchronous on purpose: the processes talk to each other and to this one's target server.
  const child = spawn(command, args, {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters = new Set<(line: string) => void>();
  let partial = '';
  const onData = (d: Buffer) => {
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      if (lines.length > 200) lines.shift();
      for (const w of waiters) w(line);
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = once(child, 'exit').then(([code, signal]) => ({ code, signal }));
  // A failed test may leave it running: gone (and waited for) before the leak check.
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return {
    child,
    exited,
    tail: () => lines.slice(-30).join('\n'),
    line: (pattern) =>
      new Promise((resolve, reject) => {
        const check = (line: string) => {
          const m = pattern.exec(line);
          if (!m) return false;
          waiters.delete(check);
          resolve(m);
          return true;
        };
        if (lines.some(check)) return;
        waiters.add(check);
        exited.then(({ code, signal }) =>
          reject(
            new Error(
              `exited (${code ?? signal}) before printing ${pattern}:\n${lines.slice(-30).join('\n')}`,
            ),
          ),
        );
      }),
  };
}

async function startDockhand(t: Test, role: 'all' | 'worker', env: Record<string, string>) {
  const proc = spawnLogged(t, process.execPath, [CLI, role], env);
  // Dockhand containers are labelled with their process: the leak check knows only this one's.
  t.teardown(() => removeContainersOf(proc.child.pid as number));
  const [started] = await proc.line(/^\{.*"msg":"dockhand started"\}$/);
  return { ...proc, url: JSON.parse(started).url as string };
}

function containersOf(pid: number, all = false) {
  return docker.listContainers({
    all,
    filters: { label: [`${SANDBOX_LABEL}=1`, `${OWNER_LABEL}=${os.hostname()}/${pid}`] },
  });
}

async function removeContainersOf(pid: number): Promise<void> {
  for (const c of await containersOf(pid, true))
    await docker
      .getContainer(c.Id)
      .remove({ force: true })
      .catch(() => {});
}

async function api(base: string, method: string, url: string, body?: object) {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: {
      authorization: `Bearer ${API_KEY}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

interface NodeView {
  node_id: string;
  name: string;
  ip: string;
  status: string;
  capabilities: Record<string, unknown>;
  metrics?: {
    cpu_usage: number;
    mem_usage: number;
    disk_free_mb: number;
    running_containers: { id: string; kind?: string; state?: string }[];
    pool?: { idle: number; busy: number };
    active_jobs?: Record<string, number>;
  };
  reported_state?: string;
  desired: { eligible: boolean; drain: boolean };
  last_seen: string;
}

async function nodes(base: string): Promise<NodeView[]> {
  const res = await api(base, 'GET', '/api/v1/nodes');
  if (res.status !== 200) throw new Error(`GET /api/v1/nodes: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.nodes;
}
const byName = async (base: string, name: string) => (await nodes(base)).find((n) => n.name === name);

/** `dockhand_jobs_completed_total{queue="http-jobs"}` of one process: who ran the jobs. */
async function httpJobsDone(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = /^dockhand_jobs_completed_total\{queue="http-jobs"\} (\d+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/** Queues n HTTP jobs through the gateway and waits until they succeeded and were counted. */
async function runJobs(gateway: string, workers: string[], n: number): Promise<number[]> {
  const before = await Promise.all(workers.map(httpJobsDone));
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await api(gateway, 'POST', '/jobs', { url: `${target.url}/ok` });
    if (res.status !== 202) throw new Error(`POST /jobs: ${res.status} ${JSON.stringify(res.body)}`);
    ids.push(res.body.id);
  }
  await waitFor(
    async () => {
      const states = await Promise.all(ids.map((id) => api(gateway, 'GET', `/jobs/${id}`)));
      return states.every((s) => s.body.status === 'succeeded');
    },
    { what: `${n} HTTP jobs to succeed`, timeoutMs: 30_000 },
  );
  // A worker counts a job just after Redis has it completed: wait until every one is counted.
  let after: number[] = [];
  await waitFor(
    async () => {
      after = await Promise.all(workers.map(httpJobsDone));
      return after.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0) >= n;
    },
    { what: 'the jobs to be counted' },
  );
  return after.map((v, i) => v - (before[i] as number));
}

const shared = {
  HEARTBEAT_INTERVAL: String(INTERVAL),
  API_KEYS: API_KEY,
  NODE_REGISTRATION_TOKEN: REG,
  HTTP_JOBS_ALLOWLIST: '127.0.0.1',
  LOG_LEVEL: 'info',
};

t.test('npm start, a second worker, drain, kill, and the MIaaS agent', async (t) => {
  // --- `dockhand all`: its own control plane, with warm function and exec containers.
  const envA = testEnv(t, {
    ...shared,
    PORT: '0',
    NODE_NAME: 'e2e-node-a',
    POOL_MIN_IDLE: '1',
    EXEC_WARM_IMAGES: WARM_IMAGE,
  });
  const a = await startDockhand(t, 'all', envA);
  const gw = a.url;
  const pidA = a.child.pid as number;

  // Its containers (one warm per function runtime, one warm exec), as Docker and the node list them.
  const { nodeA, ownA } = await waitFor(
    async () => {
      const [own, n] = await Promise.all([containersOf(pidA), byName(gw, 'e2e-node-a')]);
      const listed = new Set(n?.metrics?.running_containers.map((c) => c.id));
      return own.length >= RUNTIME_NAMES.length + 1 &&
        n?.status === 'online' &&
        own.every((c) => listed.has(c.Id))
        ? { nodeA: n, ownA: own }
        : undefined;
    },
    { what: 'node a online, reporting its warm containers', timeoutMs: 30_000 },
  );
  const disk = await statfs(envA.DATA_DIR as string);
  t.same(
    nodeA.capabilities,
    {
      os: process.platform,
      cpu_count: os.cpus().length,
      mem_mb: Math.floor(os.totalmem() / 2 ** 20),
      disk_mb: Math.floor((disk.blocks * disk.bsize) / 2 ** 20),
      gpus: nodeA.capabilities.gpus,
    },
    "this machine's capabilities",
  );
  t.ok(Array.isArray(nodeA.capabilities.gpus), 'gpus is an array');
  const kinds = nodeA.metrics?.running_containers
    .filter((c) => ownA.some((o) => o.Id === c.id))
    .map((c) => c.kind)
    .sort();
  t.same(kinds, ['exec', ...RUNTIME_NAMES.map(() => 'function')], 'its running containers, by kind');
  t.match(nodeA.metrics, {
    cpu_usage: Number,
    mem_usage: Number,
    disk_free_mb: Number,
    pool: { idle: Number, busy: Number },
    active_jobs: { 'http-jobs': 0 },
  });
  t.equal(nodeA.reported_state, 'active');

  // --- A second worker: its own DATA_DIR (so its own node identity), name and metrics port.
  const envB = testEnv(t, {
    ...shared,
    QUEUE_PREFIX: envA.QUEUE_PREFIX as string,
    NODE_NAME: 'e2e-node-b',
    WORKER_METRICS_PORT: '0',
    CONTROL_PLANE_URL: gw,
    POOL_MIN_IDLE: '0',
  });
  const b = await startDockhand(t, 'worker', envB);
  const metricsB = await fetch(`${b.url}/metrics`);
  t.equal(metricsB.status, 200, "the worker's /metrics answers on WORKER_METRICS_PORT");
  t.match(await metricsB.text(), /dockhand_jobs_completed_total/);
  t.not(new URL(b.url).port, new URL(gw).port);

  const nodeB = await waitFor(
    async () => {
      const n = await byName(gw, 'e2e-node-b');
      return n?.status === 'online' && n.metrics ? n : undefined;
    },
    { what: 'node b online with metrics', timeoutMs: 15_000 },
  );
  t.not(nodeB.node_id, nodeA.node_id, 'two nodes');
  t.match(nodeB.capabilities, {
    os: 'linux',
    cpu_count: Number,
    mem_mb: Number,
    disk_mb: Number,
    gpus: Array,
  });
  t.match(nodeB.metrics, { cpu_usage: Number, mem_usage: Number, disk_free_mb: Number, active_jobs: Object });
  t.same(
    (await nodes(gw)).filter((n) => n.name.startsWith('e2e-')).map((n) => [n.name, n.status]),
    [
      ['e2e-node-a', 'online'],
      ['e2e-node-b', 'online'],
    ],
  );

  // --- Drain b: once it reports drained, new work runs on a only.
  const drain = await api(gw, 'POST', `/api/v1/nodes/${nodeB.node_id}/drain`);
  t.equal(drain.status, 202);
  await waitFor(async () => (await byName(gw, 'e2e-node-b'))?.status === 'drained', {
    what: 'node b drained',
    timeoutMs: 15_000,
  });
  const [onA, onB] = await runJobs(gw, [gw, b.url], 6);
  t.same({ onA, onB }, { onA: 6, onB: 0 }, 'every job ran on node a while b was drained');

  // --- b eligible again, a drained: now b takes the work (a drain ends with eligibility).
  t.equal(
    (await api(gw, 'POST', `/api/v1/nodes/${nodeB.node_id}/eligibility`, { eligible: true })).status,
    200,
  );
  await waitFor(async () => (await byName(gw, 'e2e-node-b'))?.reported_state === 'active', {
    what: 'node b active again',
    timeoutMs: 15_000,
  });
  t.equal((await api(gw, 'POST', `/api/v1/nodes/${nodeA.node_id}/drain`)).status, 202);
  await waitFor(async () => (await byName(gw, 'e2e-node-a'))?.status === 'drained', {
    what: 'node a drained',
    timeoutMs: 15_000,
  });
  const [onA2, onB2] = await runJobs(gw, [gw, b.url], 6);
  t.same({ onA: onA2, onB: onB2 }, { onA: 0, onB: 6 }, 'node b takes work again, node a none');
  t.equal(
    (await api(gw, 'POST', `/api/v1/nodes/${nodeA.node_id}/eligibility`, { eligible: true })).status,
    200,
  );

  // --- SIGKILL b: no goodbye, so only its silence tells. Offline after three intervals.
  b.child.kill('SIGKILL');
  await b.exited;
  const killedAt = Date.now();
  await waitFor(async () => (await byName(gw, 'e2e-node-b'))?.status === 'offline', {
    what: 'node b offline within three intervals',
    timeoutMs: OFFLINE_BOUND_MS,
  });
  t.comment(`node b offline ${Date.now() - killedAt} ms after SIGKILL (interval ${INTERVAL} s)`);
  await waitFor(async () => (await byName(gw, 'e2e-node-a'))?.status === 'online', {
    what: 'node a online, and taking work again',
    timeoutMs: 15_000,
  });
  t.same(await runJobs(gw, [gw], 2), [2], 'work runs on node a after b is gone');

  // --- The MIaaS agent, unchanged, with Dockhand's registration token in its URL.
  const port = new URL(gw).port;
  const agent = spawnLogged(t, 'python3', [MIAAS_AGENT], {
    CONTROL_PLANE_URL: `http://agent:${REG}@127.0.0.1:${port}`,
    HEARTBEAT_INTERVAL: String(INTERVAL),
  });
  const name = (await run('python3', ['-c', 'import socket; print(socket.gethostname())'])).stdout.trim();
  const registered = agent.line(/^Registered successfully\. Node ID: (\S+)$/);
  const firstLast = await waitFor(
    async () => {
      const n = await byName(gw, name);
      return n?.metrics && n.status === 'online' ? n : undefined;
    },
    { what: `the MIaaS agent's node "${name}" with a heartbeat`, timeoutMs: 15_000 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}\nagent output:\n${agent.tail()}`);
  });
  t.equal(firstLast.capabilities.os, process.platform);
  t.equal(firstLast.capabilities.cpu_count, os.cpus().length);
  t.same(firstLast.capabilities.gpus, []);
  t.same(Object.keys(firstLast.metrics ?? {}).sort(), [
    'cpu_usage',
    'disk_free_mb',
    'mem_usage',
    'running_containers',
  ]);
  t.equal(firstLast.reported_state, undefined, 'the MIaaS agent reports no state');
  await waitFor(async () => (await byName(gw, name))?.last_seen !== firstLast.last_seen, {
    what: 'a second heartbeat',
    timeoutMs: 15_000,
  });
  t.equal((await registered)[1], firstLast.node_id, 'the node id the agent was given');
  await agent.line(/^Heartbeat sent: CPU [\d.]+%, Mem [\d.]+%, Disk \d+ MB free$/);

  // Deleted: its next heartbeat is refused (404), and it registers again, as a new node.
  t.equal((await api(gw, 'DELETE', `/api/v1/nodes/${firstLast.node_id}`)).status, 204);
  const again = await waitFor(
    async () => {
      const n = await byName(gw, name);
      return n && n.node_id !== firstLast.node_id && n.metrics ? n : undefined;
    },
    { what: 'the MIaaS agent to register again after its node was deleted', timeoutMs: 15_000 },
  );
  t.equal(again.status, 'online');
  agent.child.kill('SIGTERM');
  await agent.exited;

  // --- SIGTERM `all`: a clean exit, and none of its containers left behind.
  a.child.kill('SIGTERM');
  const { code } = await a.exited;
  t.equal(code, 0, 'clean exit');
  t.same(await containersOf(pidA, true), [], "the all-in-one process's containers are removed on SIGTERM");
});
