import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import t, { type Test } from 'tap';
import { startCountingTarget } from '../helpers/counting-target.ts';
import { testEnv } from '../helpers/env.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { freePort, startRedisServer } from '../helpers/redis-server.ts';
import { type RoleProcess, startRoleProcess } from '../helpers/role-process.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

/**
 * Redis that goes away, restarts or drops its clients, under real role processes
 * (`dockhand gateway|worker|all`), each test on a private redis-server. Jobs are HTTP jobs to a
 * loopback target that counts them; "nothing lost" means every job answered 202 completes.
 */
leakCheck(t);
const target = await startCountingTarget();
t.teardown(() => target.close());

const roleEnv = (t: Test, redisUrl: string, extra: Record<string, string> = {}) =>
  testEnv(t, {
    REDIS_URL: redisUrl,
    PORT: '0',
    WORKER_METRICS_PORT: '0',
    HTTP_JOBS_ALLOWLIST: '127.0.0.1',
    ...extra,
  });

async function get(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function postJob(gateway: RoleProcess, url: string): Promise<{ status: number; id?: string }> {
  const res = await fetch(`${gateway.url}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ url, timeoutMs: 60_000 }),
  });
  const body = (await res.json()) as { id?: string };
  return { status: res.status, id: body.id };
}

function queueOn(t: Test, url: string, prefix: string) {
  const queue = new Queue('http-jobs', { connection: { url }, prefix });
  queue.on('error', () => {});
  t.teardown(() => queue.close());
  return queue;
}

/** Every id's job completed (checked again as they finish). */
async function allCompleted(queue: Queue, ids: string[], what: string, timeoutMs = 30_000) {
  const pending = new Set(ids);
  await waitFor(
    async () => {
      for (const id of [...pending]) {
        if ((await (await queue.getJob(id))?.getState()) === 'completed') pending.delete(id);
      }
      return pending.size === 0;
    },
    { what: `${what} (${pending.size} of ${ids.length} left)`, timeoutMs },
  );
}

const warned = (role: RoleProcess, setting: RegExp) =>
  role.waitForLine((l) => l.level === 40 && setting.test(String(l.msg)), `a warning about ${setting}`);

t.test('Redis down at start: every role starts, is not ready, then ready once Redis is up', async (t) => {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const env = roleEnv(t, url);
  const [stopsEarly, ...roles] = await Promise.all(
    (['all', 'gateway', 'worker', 'all'] as const).map((role) => startRoleProcess(t, role, env)),
  );
  for (const role of roles) {
    t.ok(
      role.lines.some((l) => /^Redis does not answer: starting anyway/.test(String(l.msg))),
      `${role.role}: says Redis is away, and starts`,
    );
    t.equal((await get(`${role.url}/health`)).status, 200, `${role.role}: alive`);
    t.equal((await fetch(`${role.url}/metrics`)).status, 200, `${role.role}: scraped, not held`);
    const ready = await get(`${role.url}/ready`);
    t.equal(ready.status, 503, `${role.role}: not ready`);
    t.match(ready.body, { status: 'not_ready', redis: 'down' });
  }
  const gateway = roles[0] as RoleProcess;
  const refused = await postJob(gateway, `${target.url}/ok/early`);
  t.equal(refused.status, 503, 'work is refused at once while Redis is away, not held');
  t.equal(await stopsEarly?.stop(), 0, 'a role stopped before Redis ever answered exits cleanly');

  // Up now, and with settings that lose jobs: every role says so, once, naming the setting.
  const redis = await startRedisServer(['--maxmemory-policy', 'allkeys-lru'], { port });
  t.teardown(() => redis.stop());
  for (const role of roles) {
    const ready = await waitFor(
      async () => {
        const r = await get(`${role.url}/ready`);
        return r.status === 200 ? r : undefined;
      },
      { what: 'the role to be ready', timeoutMs: 30_000 },
    );
    t.match(ready.body, {
      status: 'ready',
      redis: 'up',
      redisDurability: { appendonly: 'no', maxmemoryPolicy: 'allkeys-lru' },
    });
    t.equal(
      (ready.body.redisDurability as { warnings: string[] }).warnings.length,
      2,
      `${role.role}: ready, both settings reported`,
    );
    await warned(role, /^Redis runs with appendonly no: a restart loses every job/);
    await warned(role, /^Redis runs with maxmemory-policy allkeys-lru: when memory fills it deletes keys/);
  }
  const accepted = await postJob(gateway, `${target.url}/ok/late`);
  t.equal(accepted.status, 202, 'the gateway takes work once Redis is up, without a restart');
  await target.arrived('late', 1, 30_000);
  await allCompleted(queueOn(t, url, env.QUEUE_PREFIX as string), [accepted.id as string], 'the job');
  t.same(await Promise.all(roles.map((r) => r.stop())), [0, 0, 0], 'each shuts down cleanly');
});

t.test(
  'Redis restarted with AOF: every job answered 202 before the restart completes after it',
  async (t) => {
    const dir = tempDir(t, 'redis');
    const aof = ['--appendonly', 'yes', '--appendfsync', 'everysec', '--dir', dir];
    let redis = await startRedisServer(aof);
    t.teardown(() => redis.stop());
    const env = roleEnv(t, redis.url, { HTTP_JOBS_CONCURRENCY: '2' });
    const [gateway, worker] = (await Promise.all([
      startRoleProcess(t, 'gateway', env),
      startRoleProcess(t, 'worker', env),
    ])) as [RoleProcess, RoleProcess];
    const ready = await get(`${gateway.url}/ready`);
    t.match(ready.body.redisDurability, { appendonly: 'yes', maxmemoryPolicy: 'noeviction', warnings: [] });

    // Two jobs in flight on the worker, the rest waiting, when Redis goes down.
    const ids: string[] = [];
    const statuses = new Set<number>();
    for (let i = 0; i < 40; i++) {
      const res = await postJob(gateway, `${target.url}/hold/restart`);
      statuses.add(res.status);
      ids.push(res.id as string);
    }
    t.same([...statuses], [202], 'all 40 accepted');
    await waitFor(() => target.holding('restart') === 2, { what: 'two jobs in flight' });
    await redis.stop(); // SIGTERM: Redis writes what it has to the AOF and exits
    t.equal((await get(`${gateway.url}/ready`)).status, 503, 'not ready while Redis is down');
    redis = await startRedisServer(aof, { port: redis.port });
    await waitFor(async () => (await get(`${worker.url}/ready`)).status === 200, {
      what: 'the worker to be ready again',
      timeoutMs: 30_000,
    });
    target.release('restart');
    await allCompleted(queueOn(t, redis.url, env.QUEUE_PREFIX as string), ids, 'every accepted job');
    t.ok(
      target.count('restart') >= ids.length,
      `all ran (${target.count('restart')} requests for ${ids.length} jobs)`,
    );
    t.equal((await get(`${gateway.url}/ready`)).status, 200, 'the gateway is ready again');
    t.same(await Promise.all([gateway.stop(), worker.stop()]), [0, 0]);
  },
);

t.test('Redis connections killed mid-processing: nothing accepted is lost, roles reconnect', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const env = roleEnv(t, redis.url, { HTTP_JOBS_CONCURRENCY: '10' });
  const [gateway, worker] = (await Promise.all([
    startRoleProcess(t, 'gateway', env),
    startRoleProcess(t, 'worker', env),
  ])) as [RoleProcess, RoleProcess];
  const admin = new Redis(redis.url);
  t.teardown(() => admin.quit());

  // Three held across every kill (their locks are renewed over new connections); quick ones
  // sent one after another while each kill happens, some answered, some in flight.
  const ids: string[] = [];
  let refused = 0;
  for (let i = 0; i < 3; i++) ids.push((await postJob(gateway, `${target.url}/hold/held`)).id as string);
  await waitFor(() => target.holding('held') === 3, { what: 'three jobs in flight' });
  for (let round = 0; round < 3; round++) {
    await waitFor(async () => (await get(`${gateway.url}/ready`)).status === 200, {
      what: 'the gateway to be ready again',
    });
    const before = target.count('quick');
    const sending = (async () => {
      for (let i = 0; i < 20; i++) {
        const res = await postJob(gateway, `${target.url}/ok/quick`);
        if (res.status === 202) ids.push(res.id as string);
        else refused++;
      }
    })();
    // The worker is running this round's jobs: kill every client but this one (the gateway's,
    // the worker's blocking and command connections, its subscriptions).
    await target.arrived('quick', before + 5);
    const killed = Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'normal'));
    t.ok(killed > 0, `kill ${round + 1} dropped ${killed} connections`);
    await sending;
  }
  t.comment(`${ids.length} jobs accepted, ${refused} refused with 503 during the kills`);
  await waitFor(
    async () =>
      (await get(`${gateway.url}/ready`)).status === 200 && (await get(`${worker.url}/ready`)).status === 200,
    { what: 'both roles to be ready again' },
  );
  target.release('held');
  await allCompleted(queueOn(t, redis.url, env.QUEUE_PREFIX as string), ids, 'every accepted job');
  t.equal(target.count('held'), 3, 'the held jobs ran once each: their locks held');
  const more = await postJob(gateway, `${target.url}/ok/after`);
  t.equal(more.status, 202);
  await target.arrived('after', 1, 30_000);
  t.same(await Promise.all([gateway.stop(), worker.stop()]), [0, 0]);
});
