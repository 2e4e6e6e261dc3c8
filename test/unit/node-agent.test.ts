import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Worker } from 'bullmq';
import t, { type Test } from 'tap';
import { loadConfig } from '../../core/config.ts';
import { type AgentLog, type AgentTimers, backoffDelay, NodeAgent } from '../../core/node-agent/agent.ts';
import { osName, statfsNearest } from '../../core/node-agent/capabilities.ts';
import {
  createControlPlaneClient,
  type FetchLike,
  parseControlPlaneUrl,
} from '../../core/node-agent/control-plane.ts';
import { createIdentityStore } from '../../core/node-agent/identity.ts';
import { cpuPercent, createMetricsSampler } from '../../core/node-agent/metrics-sampler.ts';
import { defaultRouteInterface, pickPrimaryIpv4 } from '../../core/node-agent/node-address.ts';
import { parseNvidiaSmi, queryNvidiaGpus } from '../../core/node-agent/nvidia-smi.ts';
import type { Capabilities, Desired, HeartbeatExtras, NodeState } from '../../core/node-agent/protocol.ts';
import { createWorkerGate } from '../../queues/worker-gate.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { tempDir } from '../helpers/temp-dir.ts';

leakCheck(t);

const fixture = (name: string) =>
  readFileSync(path.resolve(import.meta.dirname, '../fixtures/nvidia-smi', name), 'utf8');

t.test('nvidia-smi output, as recorded, becomes the GPU list', async (t) => {
  t.same(parseNvidiaSmi(fixture('one-gpu.txt')), [
    {
      model: 'NVIDIA GeForce RTX 3090',
      vendor: 'NVIDIA',
      memory_mb: 24576,
      driver: '535.104.05',
      uuid: 'GPU-5f3b9c1e-8a2d-4c6b-9f0e-1d2c3b4a5e6f',
    },
  ]);
  const two = parseNvidiaSmi(fixture('two-gpus.txt'));
  t.equal(two.length, 2);
  t.same(
    two.map((g) => [g.model, g.memory_mb, g.driver]),
    [
      ['NVIDIA A100-SXM4-40GB', 40960, '525.85.12'],
      ['NVIDIA A100-SXM4-40GB', 40960, '525.85.12'],
    ],
  );
  t.not(two[0]?.uuid, two[1]?.uuid, 'two devices, told apart by uuid');
  t.same(
    parseNvidiaSmi(fixture('one-gpu-windows.txt')).map((g) => g.model),
    ['NVIDIA GeForce RTX 4070 Laptop GPU'],
  );
  t.same(parseNvidiaSmi(fixture('no-devices.txt')), [], '"No devices were found" is no GPU');
  t.same(parseNvidiaSmi(fixture('driver-error.txt')), [], 'a driver error is no GPU');
  t.same(
    parseNvidiaSmi(fixture('mixed.txt')).map((g) => g.model),
    ['Tesla T4'],
    'a GPU that fell off the bus is skipped, the others are reported',
  );
  t.same(parseNvidiaSmi(''), []);
  t.same(
    parseNvidiaSmi('Some, Vendor, Card, [N/A], [N/A], GPU-0a1b2c3d-0000-1111-2222-333344445555\n'),
    [
      {
        model: 'Some, Vendor, Card',
        vendor: 'NVIDIA',
        memory_mb: 0,
        driver: '',
        uuid: 'GPU-0a1b2c3d-0000-1111-2222-333344445555',
      },
    ],
    'a comma in the name and [N/A] values',
  );
});

t.test('nvidia-smi is run asynchronously: absent, failing or hung means no GPUs', async (t) => {
  const dir = tempDir(t, 'smi');
  const script = async (name: string, body: string) => {
    const file = path.join(dir, name);
    await writeFile(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return file;
  };
  const two = await script(
    'two',
    `cat '${path.resolve(import.meta.dirname, '../fixtures/nvidia-smi/two-gpus.txt')}'`,
  );
  t.equal((await queryNvidiaGpus({ command: two })).length, 2);
  const none = await script('none', 'echo "No devices were found"; exit 6');
  t.same(await queryNvidiaGpus({ command: none }), []);
  t.same(await queryNvidiaGpus({ command: path.join(dir, 'absent') }), []);
  const hung = await script('hung', 'exec sleep 60');
  t.same(await queryNvidiaGpus({ command: hung, timeoutMs: 200 }), [], 'killed at its time limit');
});

t.test('name and address of the node', async (t) => {
  const iface = (address: string, internal = false) => ({
    address,
    netmask: '255.255.255.0',
    family: 'IPv4' as const,
    mac: '00:00:00:00:00:00',
    internal,
    cidr: `${address}/24`,
  });
  const interfaces = {
    lo: [iface('127.0.0.1', true)],
    docker0: [iface('172.17.0.1')],
    eth0: [iface('192.168.1.10')],
    eth1: [iface('10.0.0.5')],
  };
  t.equal(pickPrimaryIpv4(interfaces, 'eth1'), '10.0.0.5', 'the default route decides');
  t.equal(pickPrimaryIpv4(interfaces), '192.168.1.10', 'never the docker bridge when there is better');
  t.equal(pickPrimaryIpv4({ docker0: [iface('172.17.0.1')] }), '172.17.0.1');
  t.equal(pickPrimaryIpv4({ lo: [iface('127.0.0.1', true)] }), '127.0.0.1');
  const route = [
    'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
    'docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0',
    'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0',
  ].join('\n');
  t.equal(defaultRouteInterface(route), 'eth0');
  t.equal(defaultRouteInterface(route.split('\n').slice(0, 2).join('\n')), undefined);
  t.equal(osName('win32'), 'windows');
  t.equal(osName('darwin'), 'darwin');
  t.equal(osName('linux'), 'linux');
});

t.test('metrics: CPU between samples, memory in use, free disk of DATA_DIR', async (t) => {
  t.equal(cpuPercent({ idle: 100, total: 200 }, { idle: 150, total: 300 }), 50);
  t.equal(cpuPercent({ idle: 0, total: 0 }, { idle: 0, total: 0 }), 0, 'no time passed: 0, not NaN');
  const times = (user: number, idle: number) => ({ user, nice: 0, sys: 0, idle, irq: 0 });
  let sample = [{ model: 'x', speed: 1, times: times(100, 900) }];
  const dir = tempDir(t, 'metrics');
  const sampler = createMetricsSampler({
    dataDir: path.join(dir, 'not', 'made', 'yet'),
    cpus: () => sample,
    memory: async () => ({ total: 1000, available: 547 }),
  });
  sample = [{ model: 'x', speed: 1, times: times(252, 948) }];
  const m = await sampler();
  t.equal(m.cpu_usage, 76, '152 busy of 200 ticks');
  t.equal(m.mem_usage, 45.3);
  t.equal(m.disk_free_mb, (await statfsNearest(dir)).freeMb, 'a DATA_DIR not made yet: its parent disk');
  t.ok(m.disk_free_mb > 0);
});

t.test('backoff doubles with jitter up to its cap', async (t) => {
  t.equal(
    backoffDelay(1, 1000, 60_000, () => 0),
    500,
  );
  t.equal(
    backoffDelay(1, 1000, 60_000, () => 0.999_999),
    1000,
  );
  t.equal(
    backoffDelay(3, 1000, 60_000, () => 0.5),
    3000,
  );
  t.equal(
    backoffDelay(50, 1000, 60_000, () => 1),
    60_000,
    'capped',
  );
  t.ok(backoffDelay(50, 1000, 60_000, () => 0) >= 30_000, 'never less than half the ceiling');
});

t.test('identity file: round trip, 0600, per control plane, first claim wins', async (t) => {
  const dir = path.join(tempDir(t, 'identity'), 'data');
  const store = createIdentityStore(dir);
  const cp = 'http://cp.test:3000';
  t.equal(await store.load(cp), undefined, 'none yet');
  const mine = { node_id: 'n1', node_token: 'secret-1', control_plane: cp };
  t.same(await store.claim(mine), mine);
  t.equal((await stat(store.file)).mode & 0o777, 0o600, 'only the owner reads the token');
  t.same(await createIdentityStore(dir).load(cp), mine, 'another instance on the same DATA_DIR reads it');
  t.equal(await store.load('http://other.test:3000'), undefined, 'another control plane knows it not');

  const theirs = { node_id: 'n2', node_token: 'secret-2', control_plane: cp };
  t.same(
    await store.claim(theirs),
    mine,
    'a second registration for the same control plane adopts the first',
  );
  t.same(await store.load(cp), mine);

  const elsewhere = { node_id: 'n9', node_token: 'secret-9', control_plane: 'http://other.test:3000' };
  t.same(await store.claim(elsewhere), elsewhere, "another control plane's identity replaces it");
  t.same(await store.load('http://other.test:3000'), elsewhere);

  await store.forget('not-mine');
  t.ok(await store.load('http://other.test:3000'), 'forget leaves another node id alone');
  await store.forget('n9');
  t.equal(await store.load('http://other.test:3000'), undefined);
  await store.forget('n9'); // already gone: fine

  await writeFile(store.file, '{"node_id": "torn', { mode: 0o644 });
  t.equal(await store.load(cp), undefined, 'a torn file means register again');
  t.same(await store.claim(mine), mine, 'and is replaced');
  await writeFile(store.file, JSON.stringify(mine), { mode: 0o644 });
  t.same(await store.load(cp), mine);
  t.equal((await stat(store.file)).mode & 0o777, 0o600, 'a widened file is narrowed on load');
  t.same(
    (await readdir(dir)).filter((n) => n.endsWith('.tmp')),
    [],
  );
});

t.test('control plane client: credentials from the URL, bearer token, answers checked', async (t) => {
  t.same(parseControlPlaneUrl('http://agent:s%3Acret@cp.test:3000/'), {
    url: 'http://cp.test:3000',
    basicAuth: `Basic ${Buffer.from('agent:s:cret').toString('base64')}`,
  });
  t.same(parseControlPlaneUrl('https://cp.test/base/'), {
    url: 'https://cp.test/base',
    basicAuth: undefined,
  });

  const seen: { url: string; auth: string | null }[] = [];
  const answer =
    (status: number, body: unknown, headers: Record<string, string> = {}): FetchLike =>
    async (url, init) => {
      seen.push({ url, auth: new Headers(init.headers).get('authorization') });
      return new Response(typeof body === 'string' ? body : JSON.stringify(body), { status, headers });
    };
  const body = { name: 'n', ip: '10.0.0.1', capabilities: caps };
  const ok = { node_id: 'n1', node_token: 't1' };

  await createControlPlaneClient({
    url: 'http://u:p@cp.test',
    registrationToken: 'x'.repeat(16),
    fetch: answer(200, ok),
  }).register(body);
  await createControlPlaneClient({
    url: 'http://cp.test',
    registrationToken: 'x'.repeat(16),
    apiKey: 'k',
    fetch: answer(200, ok),
  }).register(body);
  await createControlPlaneClient({ url: 'http://cp.test', apiKey: 'key-1', fetch: answer(200, ok) }).register(
    body,
  );
  await createControlPlaneClient({ url: 'http://cp.test', fetch: answer(200, ok) }).heartbeat(
    { node_id: 'a/b', node_token: 'tok' },
    { cpu_usage: 1, mem_usage: 2, disk_free_mb: 3, running_containers: [] },
  );
  t.same(seen, [
    { url: 'http://cp.test/api/v1/nodes/register', auth: `Basic ${Buffer.from('u:p').toString('base64')}` },
    { url: 'http://cp.test/api/v1/nodes/register', auth: `Bearer ${'x'.repeat(16)}` },
    { url: 'http://cp.test/api/v1/nodes/register', auth: 'Bearer key-1' },
    { url: 'http://cp.test/api/v1/nodes/a%2Fb/heartbeat', auth: 'Bearer tok' },
  ]);

  const fail = (fetch: FetchLike) =>
    createControlPlaneClient({ url: 'http://cp.test', fetch }).register(body);
  await t.rejects(fail(answer(200, { node_id: 'n1' })), {
    message: '200 answer does not fit (/ must have required properties node_token)',
  });
  await t.rejects(fail(answer(200, 'not json')), { message: '200 answer is not JSON' });
  await t.rejects(fail(answer(401, { error: 'unauthorized', message: 'A valid key is needed.' })), {
    message: '401 A valid key is needed.',
    status: 401,
  });
  await t.rejects(fail(answer(502, '<html>Bad gateway</html>')), { message: '502 <html>Bad gateway</html>' });
  await t.rejects(fail(answer(301, '', { location: 'https://cp.test/' })), {
    message: /301 redirect to https:\/\/cp\.test\/: set CONTROL_PLANE_URL/,
  });
  await t.rejects(
    fail(async () => {
      throw new TypeError('fetch failed', { cause: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }) });
    }),
    { message: 'cannot reach http://cp.test: ECONNREFUSED', code: 'control_plane_error' },
  );
});

// ---- the agent loop, driven by a fake clock and a scripted control plane ----

const caps: Capabilities = { os: 'linux', cpu_count: 4, mem_mb: 15995, disk_mb: 500000, gpus: [] };

interface Timer {
  ms: number;
  fire(): void;
  cleared: boolean;
}

/** Timers that fire only when the test says so; next() is the next one the agent sets. */
function fakeClock() {
  const queue: Timer[] = [];
  const waiting: ((timer: Timer) => void)[] = [];
  const live = new Set<Timer>();
  const timers: AgentTimers = {
    setTimeout(callback, ms) {
      const timer: Timer = {
        ms,
        cleared: false,
        fire() {
          if (timer.cleared) return;
          live.delete(timer);
          callback();
        },
      };
      live.add(timer);
      const waiter = waiting.shift();
      if (waiter) waiter(timer);
      else queue.push(timer);
      return timer;
    },
    clearTimeout(handle) {
      const timer = handle as Timer;
      timer.cleared = true;
      live.delete(timer);
    },
  };
  return {
    timers,
    next: () =>
      new Promise<Timer>((resolve) =>
        queue.length ? resolve(queue.shift() as Timer) : waiting.push(resolve),
      ),
    live,
  };
}

type Reply = { status: number; body?: unknown } | Error | 'hang';

/** A control plane as a script: each route answers its replies in order, the last one forever. */
function scriptedControlPlane(routes: { register: Reply[]; heartbeat: Reply[] }) {
  const requests: {
    route: 'register' | 'heartbeat';
    url: string;
    auth: string | null;
    body: Record<string, unknown>;
  }[] = [];
  const fetch: FetchLike = async (url, init) => {
    const route = url.endsWith('/register') ? 'register' : 'heartbeat';
    requests.push({
      route,
      url,
      auth: new Headers(init.headers).get('authorization'),
      body: JSON.parse(String(init.body)),
    });
    const list = routes[route];
    const reply = (list.length > 1 ? list.shift() : list[0]) as Reply;
    if (reply === 'hang')
      return new Promise((_, reject) =>
        init.signal?.addEventListener('abort', () => reject(init.signal?.reason)),
      );
    if (reply instanceof Error) throw reply;
    return new Response(JSON.stringify(reply.body ?? {}), { status: reply.status });
  };
  return { fetch, requests };
}

function recordingLog() {
  const lines: string[] = [];
  const log: AgentLog = {
    info: (m) => lines.push(m),
    warn: (m) => lines.push(`WARN ${m}`),
  };
  return { log, lines };
}

function makeAgent(
  t: Test,
  cp: ReturnType<typeof scriptedControlPlane>,
  extra: {
    onDesired?: (d: Desired) => unknown;
    dataDir?: string;
    collect?: () => HeartbeatExtras | Promise<HeartbeatExtras>;
  } = {},
) {
  const clock = fakeClock();
  const { log, lines } = recordingLog();
  const identity = createIdentityStore(extra.dataDir ?? tempDir(t, 'agent'));
  const agent = new NodeAgent({
    client: createControlPlaneClient({
      url: 'http://cp.test:8080',
      registrationToken: 'r'.repeat(16),
      fetch: cp.fetch,
    }),
    identity,
    address: async () => ({ name: 'worker-node-01', ip: '192.168.1.10' }),
    capabilities: async () => caps,
    metrics: async () => ({ cpu_usage: 15.2, mem_usage: 45.3, disk_free_mb: 450000 }),
    collect: extra.collect,
    onDesired: extra.onDesired,
    intervalSeconds: 30,
    log,
    timers: clock.timers,
    random: () => 0.5,
  });
  t.teardown(() => agent.stop());
  return { agent, clock, lines, identity };
}

const ok = (body: unknown) => ({ status: 200, body });
const beat = (desired: Desired = { eligible: true, drain: false }) =>
  ok({ status: 'ok', node_id: 'x', desired, heartbeat_interval: 30 });

t.test('register, heartbeat, 404, register again: the old agent log lines', async (t) => {
  const cp = scriptedControlPlane({
    register: [
      ok({ node_id: 'node-1', node_token: 'tok-1' }),
      ok({ node_id: 'node-2', node_token: 'tok-2' }),
    ],
    heartbeat: [
      beat(),
      { status: 404, body: { error: 'not_found', message: 'No node node-1.' } },
      beat({ eligible: false, drain: true }),
    ],
  });
  const desired: Desired[] = [];
  const { agent, clock, lines, identity } = makeAgent(t, cp, { onDesired: (d) => desired.push(d) });
  agent.start();
  const first = await clock.next();
  t.equal(first.ms, 30_000, 'next heartbeat in one interval');
  t.same(lines, [
    'Starting MIaaS agent...',
    'Detected capabilities: {"os":"linux","cpu_count":4,"mem_mb":15995,"disk_mb":500000,"gpus":[]}',
    'Registering with control plane...',
    'Registered successfully. Node ID: node-1',
    'Starting heartbeat loop (interval: 30s)',
    'Heartbeat sent: CPU 15.2%, Mem 45.3%, Disk 450000 MB free',
  ]);
  t.same(cp.requests[0], {
    route: 'register',
    url: 'http://cp.test:8080/api/v1/nodes/register',
    auth: `Bearer ${'r'.repeat(16)}`,
    body: { name: 'worker-node-01', ip: '192.168.1.10', capabilities: caps },
  });
  t.same(cp.requests[1], {
    route: 'heartbeat',
    url: 'http://cp.test:8080/api/v1/nodes/node-1/heartbeat',
    auth: 'Bearer tok-1',
    body: { cpu_usage: 15.2, mem_usage: 45.3, disk_free_mb: 450000, running_containers: [] },
  });
  t.same(desired, [{ eligible: true, drain: false }]);
  t.equal(agent.nodeId, 'node-1');

  lines.length = 0;
  first.fire();
  t.equal((await clock.next()).ms, 30_000);
  t.same(lines, [
    'WARN Heartbeat refused (404 No node node-1.); registering again',
    'Registering with control plane...',
    'Registered successfully. Node ID: node-2',
    'Heartbeat sent: CPU 15.2%, Mem 45.3%, Disk 450000 MB free',
  ]);
  t.same(
    cp.requests.map((r) => `${r.route} ${r.auth}`),
    [
      `register Bearer ${'r'.repeat(16)}`,
      'heartbeat Bearer tok-1',
      'heartbeat Bearer tok-1',
      `register Bearer ${'r'.repeat(16)}`,
      'heartbeat Bearer tok-2',
    ],
  );
  t.same(desired[1], { eligible: false, drain: true }, 'each answer’s desired state is passed on');
  t.equal((await identity.load('http://cp.test:8080'))?.node_id, 'node-2', 'the new identity is saved');
  await agent.stop();
  t.equal(clock.live.size, 0, 'no timer left behind');
});

t.test('500 and network errors: backoff, the same node again, then recovery', async (t) => {
  const refused = new TypeError('fetch failed', {
    cause: Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }),
  });
  const cp = scriptedControlPlane({
    register: [ok({ node_id: 'node-1', node_token: 'tok-1' })],
    heartbeat: [{ status: 500, body: { error: 'internal', message: 'Database is down.' } }, refused, beat()],
  });
  const { agent, clock, lines } = makeAgent(t, cp);
  agent.start();
  const retry1 = await clock.next();
  t.equal(
    retry1.ms,
    backoffDelay(1, 1000, 60_000, () => 0.5),
  );
  t.equal(lines.at(-1), 'WARN Heartbeat failed: 500 Database is down.; retrying in 0.8s');
  retry1.fire();
  const retry2 = await clock.next();
  t.equal(
    retry2.ms,
    backoffDelay(2, 1000, 60_000, () => 0.5),
    'doubled',
  );
  t.equal(
    lines.at(-1),
    'WARN Heartbeat failed: cannot reach http://cp.test:8080: ECONNREFUSED; retrying in 1.5s',
  );
  retry2.fire();
  t.equal((await clock.next()).ms, 30_000, 'back to the interval');
  t.equal(lines.at(-1), 'Heartbeat sent: CPU 15.2%, Mem 45.3%, Disk 450000 MB free');
  t.equal(lines.filter((l) => l.startsWith('WARN')).length, 2, 'one line per failure');
  t.same(
    cp.requests.map((r) => r.route),
    ['register', 'heartbeat', 'heartbeat', 'heartbeat'],
    'no second registration',
  );
});

t.test('registration failures back off with one line each', async (t) => {
  const cp = scriptedControlPlane({
    register: [
      { status: 503, body: { error: 'unavailable', message: 'Starting up.' } },
      { status: 200, body: { node_id: 'n' } },
      ok({ node_id: 'node-1', node_token: 'tok-1', heartbeat_interval: 5 }),
    ],
    heartbeat: [ok({ status: 'ok', node_id: 'node-1' })],
  });
  const { agent, clock, lines } = makeAgent(t, cp);
  agent.start();
  const r1 = await clock.next();
  r1.fire();
  const r2 = await clock.next();
  t.ok(r2.ms > r1.ms, 'backed off further');
  r2.fire();
  t.equal((await clock.next()).ms, 5000, "the control plane's heartbeat_interval is used");
  t.same(lines.slice(2), [
    'Registering with control plane...',
    'WARN Failed to register with control plane: 503 Starting up.; retrying in 0.8s',
    'WARN Failed to register with control plane: 200 answer does not fit (/ must have required properties node_token); retrying in 1.5s',
    'Registered successfully. Node ID: node-1',
    'Starting heartbeat loop (interval: 5s)',
    'Heartbeat sent: CPU 15.2%, Mem 45.3%, Disk 450000 MB free',
  ]);
});

t.test('a control plane that keeps refusing the node is paced, not hammered', async (t) => {
  const cp = scriptedControlPlane({
    register: [ok({ node_id: 'node-1', node_token: 'tok-1' })],
    heartbeat: [{ status: 401, body: { error: 'unauthorized', message: 'Bad token.' } }],
  });
  const { agent, clock, lines } = makeAgent(t, cp);
  agent.start();
  const pause = await clock.next();
  t.same(
    cp.requests.map((r) => r.route),
    ['register', 'heartbeat', 'register', 'heartbeat'],
    'the first refusal re-registers at once',
  );
  t.equal(
    pause.ms,
    backoffDelay(1, 1000, 60_000, () => 0.5),
    'the second waits',
  );
  t.equal(lines.filter((l) => l.startsWith('WARN')).length, 2);
});

t.test('a saved identity is used without registering; wake() sends a heartbeat now', async (t) => {
  const dataDir = tempDir(t, 'saved');
  await createIdentityStore(dataDir).claim({
    node_id: 'kept',
    node_token: 'tok-k',
    control_plane: 'http://cp.test:8080',
  });
  const cp = scriptedControlPlane({
    register: [ok({ node_id: 'new', node_token: 'x' })],
    heartbeat: [beat()],
  });
  let state: NodeState = 'active';
  const { agent, clock, lines } = makeAgent(t, cp, {
    dataDir,
    collect: () => ({
      running_containers: [],
      state,
      pool: { idle: 1, busy: 0 },
      active_jobs: { functions: 0 },
    }),
  });
  agent.start();
  const interval = await clock.next();
  t.same(lines.slice(2, 4), [
    'Using the saved node identity. Node ID: kept',
    'Starting heartbeat loop (interval: 30s)',
  ]);
  t.same(
    cp.requests.map((r) => r.url),
    ['http://cp.test:8080/api/v1/nodes/kept/heartbeat'],
  );
  t.same(cp.requests[0]?.body, {
    cpu_usage: 15.2,
    mem_usage: 45.3,
    disk_free_mb: 450000,
    running_containers: [],
    state: 'active',
    pool: { idle: 1, busy: 0 },
    active_jobs: { functions: 0 },
  });
  state = 'drained';
  agent.wake();
  t.ok(interval.cleared, 'the interval wait was cut short');
  await clock.next();
  t.equal(cp.requests[1]?.body.state, 'drained');
});

t.test('stop() ends a wait or a request in flight at once', async (t) => {
  const cp = scriptedControlPlane({ register: [ok({ node_id: 'n', node_token: 't' })], heartbeat: ['hang'] });
  const { agent, clock, lines } = makeAgent(t, cp);
  agent.start();
  await new Promise<void>((resolve) => {
    const check = () => (cp.requests.length === 2 ? resolve() : setImmediate(check));
    check();
  });
  await agent.stop();
  await agent.stop(); // twice is fine
  t.equal(clock.live.size, 0);
  t.notOk(
    lines.some((l) => l.startsWith('WARN')),
    'stopping is not a failure',
  );

  const idle = makeAgent(
    t,
    scriptedControlPlane({ register: [ok({ node_id: 'n', node_token: 't' })], heartbeat: [beat()] }),
  );
  idle.agent.start();
  await idle.clock.next();
  await idle.agent.stop();
  t.equal(idle.clock.live.size, 0, 'the interval timer is cleared');
});

t.test('a failing onDesired or collect costs a log line, not the loop', async (t) => {
  const cp = scriptedControlPlane({ register: [ok({ node_id: 'n', node_token: 't' })], heartbeat: [beat()] });
  const { agent, clock, lines } = makeAgent(t, cp, {
    onDesired: () => {
      throw new Error('pause failed');
    },
    collect: async () => {
      throw new Error('docker went away');
    },
  });
  agent.start();
  (await clock.next()).fire();
  await clock.next();
  t.equal(lines.filter((l) => l === 'WARN Could not apply the desired state: pause failed').length, 2);
  t.equal(
    lines.filter((l) => l === "WARN Could not collect this node's containers and jobs: docker went away")
      .length,
    2,
  );
  t.equal(cp.requests.filter((r) => r.route === 'heartbeat').length, 2, 'heartbeats still go out');
  t.same(cp.requests[1]?.body.running_containers, []);
});

t.test('an unreadable identity file is not fatal', async (t) => {
  const dataDir = tempDir(t, 'unreadable');
  await writeFile(path.join(dataDir, 'node-identity.json'), 'garbage', { mode: 0o600 });
  const cp = scriptedControlPlane({
    register: [ok({ node_id: 'n1', node_token: 't' })],
    heartbeat: [beat()],
  });
  const { agent, clock } = makeAgent(t, cp, { dataDir });
  agent.start();
  await clock.next();
  t.equal(JSON.parse(await readFile(path.join(dataDir, 'node-identity.json'), 'utf8')).node_id, 'n1');
});

t.test('worker gate: drain waits for active jobs, undo waits for the drain, jobs are counted', async (t) => {
  /** A BullMQ Worker as the gate sees it: events, pause() that resolves when the test says. */
  class FakeWorker extends EventEmitter {
    readonly calls: string[] = [];
    finishPause: (() => void) | undefined;
    constructor(readonly name: string) {
      super();
    }
    pause() {
      this.calls.push('pause');
      return new Promise<void>((resolve) => {
        this.finishPause = resolve;
      });
    }
    async resume() {
      this.calls.push('resume');
    }
  }
  const a = new FakeWorker('functions');
  const b = new FakeWorker('exec');
  let idle = 0;
  const gate = createWorkerGate([a, b] as unknown as Worker[], { onIdle: () => idle++ });
  t.teardown(() => gate.close());
  a.emit('active', { id: '1' });
  a.emit('active', { id: '2' });
  b.emit('active', { id: '3' });
  a.emit('completed', { id: '1' });
  a.emit('failed', { id: 'not-ours' });
  t.same(gate.activeJobs(), { functions: 1, exec: 1 });
  t.equal(gate.state(), 'active');

  gate.apply({ eligible: true, drain: false });
  await gate.settled();
  t.same(a.calls, [], 'already active: nothing to do');

  gate.apply({ eligible: true, drain: true });
  t.equal(gate.state(), 'draining');
  await new Promise((resolve) => setImmediate(resolve));
  t.same([a.calls, b.calls], [['pause'], ['pause']], 'every worker stops taking jobs');
  gate.apply({ eligible: false, drain: true });
  t.equal(gate.state(), 'draining', 'drain wins over ineligible');
  a.finishPause?.();
  b.finishPause?.();
  await gate.settled();
  t.equal(gate.state(), 'drained');
  t.equal(idle, 1, 'drained is announced once');
  t.same(gate.activeJobs(), { functions: 0, exec: 0 });

  gate.apply({ eligible: false, drain: false });
  t.equal(gate.state(), 'ineligible');
  gate.apply({ eligible: true, drain: false });
  await gate.settled();
  t.same(a.calls, ['pause', 'resume'], 'ineligible → eligible: one resume');
  t.equal(gate.state(), 'active');

  gate.apply({ eligible: true, drain: true });
  await new Promise((resolve) => setImmediate(resolve));
  gate.apply({ eligible: true, drain: false });
  t.equal(gate.state(), 'active');
  await new Promise((resolve) => setImmediate(resolve));
  t.same(a.calls, ['pause', 'resume', 'pause'], 'no resume while the pause still waits for jobs');
  a.finishPause?.();
  b.finishPause?.();
  await gate.settled();
  t.same(a.calls, ['pause', 'resume', 'pause', 'resume'], 'resumed once the drain ended');
  t.equal(idle, 1, 'an undone drain is not announced as drained');
  t.equal(gate.state(), 'active');
});

t.test('CONTROL_PLANE_URL: an http(s) URL; a wrong one is named without its password', async (t) => {
  t.equal(
    loadConfig({ CONTROL_PLANE_URL: 'http://agent:tok@cp.test:3000' }).nodes.controlPlaneUrl,
    'http://agent:tok@cp.test:3000',
  );
  for (const bad of ['ftp://agent:secret@cp.test', 'http://', 'http://cp.test:99999']) {
    t.throws(() => loadConfig({ CONTROL_PLANE_URL: bad }), {
      message: /^CONTROL_PLANE_URL must be an http\(s\):\/\/ URL, credentials allowed/,
    });
  }
  t.notMatch(
    (() => {
      try {
        loadConfig({ CONTROL_PLANE_URL: 'ftp://agent:secret@cp.test' });
      } catch (err) {
        return (err as Error).message;
      }
    })(),
    /secret/,
  );
});

t.test("the URL's credentials never reach a log line", async (t) => {
  const { log, lines } = recordingLog();
  const clock = fakeClock();
  const agent = new NodeAgent({
    client: createControlPlaneClient({
      url: 'http://agent:hunter2-secret@cp.test:8080',
      fetch: async () => {
        throw new TypeError('fetch failed', { cause: Object.assign(new Error('x'), { code: 'ENOTFOUND' }) });
      },
    }),
    identity: createIdentityStore(tempDir(t, 'creds')),
    address: async () => ({ name: 'n', ip: '10.0.0.1' }),
    capabilities: async () => caps,
    metrics: async () => ({ cpu_usage: 1, mem_usage: 1, disk_free_mb: 1 }),
    intervalSeconds: 30,
    log,
    timers: clock.timers,
  });
  agent.start();
  await clock.next();
  await agent.stop();
  t.match(
    lines.at(-1),
    /^WARN Failed to register with control plane: cannot reach http:\/\/cp\.test:8080: ENOTFOUND/,
  );
  t.notOk(lines.some((l) => l.includes('hunter2')));
});
