import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import path from 'node:path';
import { type Job, Queue, Worker } from 'bullmq';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import t from 'tap';
import { createControlPlaneClient } from '../../core/node-agent/control-plane.ts';
import { startAgentRole } from '../../roles/agent.ts';
import { wireNodeAgent } from '../../roles/wire-node-agent.ts';
import { OWNER_LABEL, SANDBOX_LABEL } from '../../runtimes/docker-sandbox.ts';
import { listNodeContainers } from '../../runtimes/node-containers.ts';
import { startControlPlaneStub } from '../helpers/control-plane-stub.ts';
import { REDIS_URL, startTestRole, testConfig, testEnv } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { freePort } from '../helpers/redis-server.ts';
import { CLI, runCli } from '../helpers/run-cli.ts';
import { waitFor } from '../helpers/wait-for.ts';

leakCheck(t);
const TOKEN = 'registration-token-0123456789';
const silent = pino({ level: 'silent' });
/** GPU detection is the unit tests' business; here it must not depend on the machine. */
const noGpus = async () => [];

t.test("the agent role sends the MIaaS agent's payloads, with Basic auth from the URL", async (t) => {
  const basic = `Basic ${Buffer.from(`agent:${TOKEN}`).toString('base64')}`;
  const stub = await startControlPlaneStub(t, { registrationAuth: basic });
  const config = testConfig(t, {
    CONTROL_PLANE_URL: stub.url.replace('http://', `http://agent:${TOKEN}@`),
    HEARTBEAT_INTERVAL: '1',
    NODE_NAME: 'worker-node-01',
    NODE_IP: '192.168.1.10',
    DOCKER_HOST: 'unix:///nonexistent/docker.sock',
  });
  const agent = await startAgentRole(config, { gpus: noGpus });
  t.teardown(() => agent.close());
  await waitFor(() => stub.heartbeats().length >= 2, { what: 'two heartbeats' });

  const [registration, ...others] = stub.registrations();
  t.equal(others.length, 0, 'registered once');
  t.equal(registration?.authorization, basic, 'credentials from the URL, as Basic auth');
  t.same(Object.keys(registration?.body ?? {}).sort(), ['capabilities', 'ip', 'name']);
  t.match(registration?.body, {
    name: 'worker-node-01',
    ip: '192.168.1.10',
    capabilities: { os: 'linux', cpu_count: Number, mem_mb: Number, disk_mb: Number, gpus: [] },
  });
  const capabilities = registration?.body.capabilities as {
    cpu_count: number;
    mem_mb: number;
    disk_mb: number;
  };
  t.ok(capabilities.cpu_count >= 1 && capabilities.mem_mb > 0 && capabilities.disk_mb > 0);

  const [beat] = stub.heartbeats();
  t.equal(beat?.path, '/api/v1/nodes/node-1/heartbeat');
  t.equal(beat?.authorization, 'Bearer token-1', "the node's own token");
  t.same(
    Object.keys(beat?.body ?? {}).sort(),
    ['cpu_usage', 'disk_free_mb', 'mem_usage', 'running_containers'],
    'the old agent sent these four; without workers there is no pool, job count or state',
  );
  t.match(beat?.body, { cpu_usage: Number, mem_usage: Number, disk_free_mb: Number, running_containers: [] });
  const body = beat?.body as { cpu_usage: number; mem_usage: number };
  t.ok(body.cpu_usage >= 0 && body.cpu_usage <= 100 && body.mem_usage > 0 && body.mem_usage <= 100);
  t.same(beat?.body.running_containers, [], 'no Docker engine: no containers, heartbeats still go out');
  t.equal(agent.nodeId(), 'node-1');
});

t.test('a restart keeps the node; a control plane that forgot it gets a new registration', async (t) => {
  const stub = await startControlPlaneStub(t);
  const env = testEnv(t, {
    CONTROL_PLANE_URL: stub.url,
    HEARTBEAT_INTERVAL: '1',
    NODE_REGISTRATION_TOKEN: TOKEN,
  });
  const config = testConfig(t, env);

  const first = await startAgentRole(config, { gpus: noGpus });
  await waitFor(() => stub.heartbeats('node-1').length >= 1, { what: 'the first heartbeat' });
  t.equal(stub.registrations()[0]?.authorization, `Bearer ${TOKEN}`, 'NODE_REGISTRATION_TOKEN as bearer');
  await first.close();

  const second = await startAgentRole(config, { gpus: noGpus });
  t.teardown(() => second.close());
  const before = stub.heartbeats('node-1').length;
  await waitFor(() => stub.heartbeats('node-1').length > before, { what: 'a heartbeat after the restart' });
  t.equal(stub.registrations().length, 1, 'the restarted agent did not register again');
  t.equal(second.nodeId(), 'node-1');

  stub.forget('node-1');
  await waitFor(() => stub.heartbeats('node-2').length >= 1, { what: 'heartbeats as the new node' });
  t.equal(stub.registrations().length, 2);
  const saved = JSON.parse(await readFile(path.join(config.storage.dataDir, 'node-identity.json'), 'utf8'));
  t.same(saved, { node_id: 'node-2', node_token: 'token-2', control_plane: stub.url });
});

t.test('two agents starting at once on one DATA_DIR end up one node', async (t) => {
  const stub = await startControlPlaneStub(t);
  const config = testConfig(t, { CONTROL_PLANE_URL: stub.url, HEARTBEAT_INTERVAL: '1' });
  const [a, b] = await Promise.all([
    startAgentRole(config, { gpus: noGpus }),
    startAgentRole(config, { gpus: noGpus }),
  ]);
  t.teardown(() => Promise.all([a.close(), b.close()]));
  await waitFor(() => a.nodeId() && b.nodeId(), { what: 'both agents to have a node id' });
  t.equal(a.nodeId(), b.nodeId());
  const kept = a.nodeId() as string;
  await waitFor(() => stub.heartbeats(kept).length >= 2, { what: 'heartbeats from both' });
  t.same(
    [
      ...new Set(
        stub
          .heartbeats()
          .slice(-2)
          .map((h) => h.nodeId),
      ),
    ],
    [kept],
    'after the claim, every heartbeat is for the one node',
  );
});

/** True while a Redis client of this prefix is blocked in BZPOPMIN (a worker waiting for a job). */
async function blockedFetch(prefix: string): Promise<boolean> {
  const redis = new Redis(REDIS_URL);
  try {
    const list = String(await redis.client('LIST'));
    return list.split('\n').some((line) => line.includes(`name=${prefix}:`) && line.includes('cmd=bzpopmin'));
  } finally {
    redis.disconnect();
  }
}

t.test(
  'drain on a real BullMQ worker: the active job finishes, no new one starts, drained is reported',
  async (t) => {
    const stub = await startControlPlaneStub(t);
    const config = testConfig(t, { CONTROL_PLANE_URL: stub.url, HEARTBEAT_INTERVAL: '1' });
    const prefix = config.redis.prefix;
    const queue = new Queue('work', { connection: { url: REDIS_URL }, prefix });
    t.teardown(() => queue.close());
    const started: { name: string; state: string }[] = [];
    const releases = new Map<string, () => void>();
    let wired: ReturnType<typeof wireNodeAgent>;
    // Two at a time: while A runs, the worker's other slot waits in Redis for the next job, which
    // is exactly where a pause(true) would still take one.
    const worker = new Worker(
      'work',
      async (job: Job) => {
        started.push({ name: job.name, state: wired?.gate?.state() ?? 'none' });
        if (job.name === 'hold') await new Promise<void>((resolve) => releases.set(job.name, resolve));
        return job.name;
      },
      { connection: { url: REDIS_URL }, prefix, concurrency: 2 },
    );
    t.teardown(() => worker.close());
    wired = wireNodeAgent({
      config,
      logger: silent,
      workers: [worker],
      poolStats: () => ({ idle: 2, busy: 1 }),
      gpus: noGpus,
    });
    t.ok(wired, 'a worker with CONTROL_PLANE_URL runs the agent');
    t.teardown(() => wired?.close());

    await queue.add('hold', {});
    await waitFor(() => releases.has('hold'), { what: 'the held job to start' });
    await waitFor(() => blockedFetch(prefix), { what: 'the free slot to wait in Redis' });
    await waitFor(
      () => stub.heartbeats().some((h) => (h.body.active_jobs as Record<string, number>)?.work === 1),
      {
        what: 'a heartbeat counting the active job',
      },
    );
    const active = stub.heartbeats().at(-1)?.body;
    t.match(active, { state: 'active', pool: { idle: 2, busy: 1 }, active_jobs: { work: 1 } });

    stub.setDesired({ eligible: true, drain: true });
    await waitFor(() => stub.heartbeats().some((h) => h.body.state === 'draining'), { what: 'draining' });
    await waitFor(async () => !(await blockedFetch(prefix)), { what: 'the waiting fetch to be cut' });
    const late = await queue.add('late', {});
    t.equal(await late.getState(), 'waiting');
    releases.get('hold')?.();
    await waitFor(() => stub.heartbeats().some((h) => h.body.state === 'drained'), { what: 'drained' });
    t.match(stub.heartbeats().find((h) => h.body.state === 'drained')?.body, { active_jobs: { work: 0 } });
    t.equal(await late.getState(), 'waiting', 'the job added during the drain was not taken');
    t.same(
      started.map((s) => s.name),
      ['hold'],
      'nothing started after the drain began',
    );

    stub.setDesired({ eligible: true, drain: false });
    await waitFor(async () => (await late.getState()) === 'completed', { what: 'the late job after resume' });
    t.same(started.at(-1), { name: 'late', state: 'active' }, 'taken only once the node is active again');
    await waitFor(() => stub.heartbeats().at(-1)?.body.state === 'active', { what: 'active again' });

    stub.setDesired({ eligible: false, drain: false });
    await waitFor(() => stub.heartbeats().at(-1)?.body.state === 'ineligible', { what: 'ineligible' });
    await wired?.gate?.settled();
    const refused = await queue.add('refused', {});
    stub.setDesired({ eligible: true, drain: false });
    await waitFor(async () => (await refused.getState()) === 'completed', { what: 'jobs flowing again' });
    t.same(started.at(-1), { name: 'refused', state: 'active' });
  },
);

t.test("Dockhand's containers on this engine are listed with their labels", async (t) => {
  const config = testConfig(t);
  const docker = new Docker();
  const container = await docker.createContainer({
    Image: config.functions.images.node20,
    Entrypoint: ['node'],
    Cmd: ['-e', 'setInterval(() => {}, 1000)'],
    Labels: {
      [SANDBOX_LABEL]: '1',
      [OWNER_LABEL]: `${hostname()}/${process.pid}`,
      'dockhand.kind': 'exec',
      'dockhand.execution': 'exec-123',
    },
    HostConfig: { NetworkMode: 'none' },
  });
  t.teardown(() => container.remove({ force: true }));
  await container.start();
  const listed = (await listNodeContainers(docker)).find((c) => c.id === container.id);
  t.match(listed, {
    id: container.id,
    image: config.functions.images.node20,
    state: 'running',
    uptime_seconds: Number,
    kind: 'exec',
    execution_id: 'exec-123',
  });
  t.notOk(listed && 'function' in listed, 'labels that are not there are not reported');
  await t.rejects(listNodeContainers(new Docker({ socketPath: '/nonexistent/docker.sock' })));
});

t.test(
  'a worker-only process serves /health, /ready, /metrics on WORKER_METRICS_PORT and heartbeats its state',
  async (t) => {
    const stub = await startControlPlaneStub(t);
    const [metricsPort, apiPort] = [await freePort(), await freePort()];
    const config = testConfig(t, {
      PORT: String(apiPort),
      WORKER_METRICS_PORT: String(metricsPort),
      CONTROL_PLANE_URL: stub.url,
      HEARTBEAT_INTERVAL: '1',
    });
    const running = await startTestRole(t, 'worker', config, { listen: true });
    t.equal(running.url, `http://127.0.0.1:${metricsPort}`, 'the metrics port, not PORT');
    for (const route of ['/health', '/ready', '/metrics']) {
      const res = await fetch(`${running.url}${route}`);
      t.equal(res.status, 200, route);
      await res.text();
    }
    await waitFor(() => stub.heartbeats().length >= 1, { what: "the worker's first heartbeat" });
    t.match(stub.heartbeats()[0]?.body, {
      state: 'active',
      active_jobs: { functions: 0, batches: 0, 'http-jobs': 0 },
      running_containers: Array,
    });
  },
);

t.test('a worker without CONTROL_PLANE_URL and without an API runs no agent', async (t) => {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line).msg) });
  t.equal(wireNodeAgent({ config: testConfig(t), logger, workers: [] }), undefined);
  t.same(lines, [
    'Node agent off: CONTROL_PLANE_URL is not set and this process serves no API to register with.',
  ]);
  const stub = await startControlPlaneStub(t);
  const own = wireNodeAgent({
    config: testConfig(t),
    logger: silent,
    workers: [],
    apiPort: stub.port,
    gpus: noGpus,
  });
  t.teardown(() => own?.close());
  t.equal(own?.client.url, stub.url, 'the all-in-one server registers with its own API');
  await waitFor(() => stub.heartbeats().length >= 1, { what: 'a heartbeat to the own API' });
  t.equal(
    wireNodeAgent({
      config: testConfig(t, { NODE_AGENT: 'no', CONTROL_PLANE_URL: stub.url }),
      logger: silent,
      workers: [],
    }),
    undefined,
  );
});

const run = runCli;

t.test('`dockhand agent` runs without Redis and Docker and stops cleanly on SIGTERM', async (t) => {
  const stub = await startControlPlaneStub(t, { heartbeatInterval: 1 });
  const env = testEnv(t, {
    CONTROL_PLANE_URL: stub.url,
    LOG_LEVEL: 'info',
    REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
    DOCKER_HOST: 'unix:///nonexistent/docker.sock',
  });
  const agent = run(['agent'], env);
  t.teardown(async () => {
    if (agent.child.exitCode === null && agent.child.signalCode === null) {
      agent.child.kill('SIGKILL');
      await agent.done;
    }
  });
  await waitFor(() => /Heartbeat sent: CPU [\d.]+%, Mem [\d.]+%, Disk \d+ MB free/.test(agent.stdout()), {
    what: 'a heartbeat in the log',
    timeoutMs: 20_000,
  });
  agent.child.kill('SIGTERM');
  const { code, stdout } = await agent.done;
  t.equal(code, 0, 'clean exit');
  const messages = stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line).msg as string);
  const order = [
    'Starting MIaaS agent...',
    'Detected capabilities: ',
    'Registering with control plane...',
    'Registered successfully. Node ID: node-1',
    'Starting heartbeat loop (interval: 1s)',
    'Heartbeat sent: CPU ',
  ].map((line) => messages.findIndex((m) => m.startsWith(line)));
  t.ok(
    order.every((index, i) => index >= 0 && (i === 0 || index > (order[i - 1] as number))),
    'the old agent’s lines, in order',
  );
  t.match(
    messages.find((m) => m.startsWith('Detected capabilities: ')),
    /^Detected capabilities: \{"os":"linux","cpu_count":\d+,"mem_mb":\d+,"disk_mb":\d+,"gpus":\[/,
  );
  t.ok(messages.includes('shutting down'));
  t.ok(stub.heartbeats().length >= 1);

  const missing = await run(['agent'], { ...env, CONTROL_PLANE_URL: '' }).done;
  t.equal(missing.code, 2);
  t.equal(
    missing.stderr,
    'dockhand: The agent role needs CONTROL_PLANE_URL, the control plane to register with (e.g. http://control-plane:3000).\n',
  );
});

t.test('a control plane that redirects does not get the token carried elsewhere', async (t) => {
  const stub = await startControlPlaneStub(t);
  const seen: (string | undefined)[] = [];
  const redirector = createServer((req, res) => {
    seen.push(req.headers.authorization);
    res.writeHead(307, { location: `${stub.url}${req.url}` });
    res.end();
  });
  await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => redirector.close(() => resolve())));
  const { port } = redirector.address() as AddressInfo;
  const client = createControlPlaneClient({ url: `http://127.0.0.1:${port}`, registrationToken: TOKEN });
  t.teardown(() => client.close());
  await t.rejects(
    client.register({
      name: 'n',
      ip: '10.0.0.1',
      capabilities: { os: 'linux', cpu_count: 1, mem_mb: 1, disk_mb: 1, gpus: [] },
    }),
    {
      message: `307 redirect to ${stub.url}/api/v1/nodes/register: set CONTROL_PLANE_URL to the URL that answers`,
    },
  );
  t.same(seen, [`Bearer ${TOKEN}`]);
  t.equal(stub.requests.length, 0, 'the redirect was not followed');
});
